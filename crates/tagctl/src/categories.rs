//! `tagctl categories …`: the tag categories of TagService.

use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::CategoriesCommand;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct CategoryView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub exclusive: bool,
    pub create_time: Option<Time>,
    pub update_time: Option<Time>,
}

impl From<pb::Category> for CategoryView {
    fn from(category: pb::Category) -> Self {
        CategoryView {
            create_time: Time::from_proto(category.create_time.as_ref()),
            update_time: Time::from_proto(category.update_time.as_ref()),
            id: category.id,
            name: category.name,
            description: category.description,
            exclusive: category.exclusive,
        }
    }
}

impl View for CategoryView {
    const COLUMNS: &'static [&'static str] = &["ID", "NAME", "EXCLUSIVE", "DESCRIPTION", "CREATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            yes_no(self.exclusive),
            self.description.clone(),
            cell(self.create_time.as_ref()),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("exclusive", yes_no(self.exclusive)),
            ("description", self.description.clone()),
            ("created", cell(self.create_time.as_ref())),
            ("updated", cell(self.update_time.as_ref())),
        ]
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

#[derive(Debug, Serialize)]
struct Deleted {
    id: String,
    deleted_tags: u64,
    removed_assignments: u64,
}

pub async fn run(
    command: CategoriesCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.tags();
    match command {
        CategoriesCommand::List(paging) => {
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_categories(pb::ListCategoriesRequest {
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.categories, page.next_page_token))
                }
            })
            .await?;
            out.list(&rows.into_iter().map(CategoryView::from).collect::<Vec<_>>())
        }
        CategoriesCommand::Create {
            name,
            description,
            exclusive,
        } => {
            let category = client
                .create_category(pb::CreateCategoryRequest {
                    name,
                    description,
                    exclusive,
                })
                .await?
                .into_inner();
            out.record(&CategoryView::from(category))
        }
        CategoriesCommand::Update {
            id,
            name,
            description,
            exclusive,
        } => {
            let mut paths = Vec::new();
            if name.is_some() {
                paths.push("name");
            }
            if description.is_some() {
                paths.push("description");
            }
            if exclusive.is_some() {
                paths.push("exclusive");
            }
            if paths.is_empty() {
                return Err(Failure::usage(
                    "nothing to update: give --name, --description or --exclusive",
                ));
            }
            let category = client
                .update_category(pb::UpdateCategoryRequest {
                    category: Some(pb::Category {
                        id,
                        name: name.unwrap_or_default(),
                        description: description.unwrap_or_default(),
                        exclusive: exclusive.unwrap_or_default(),
                        ..pb::Category::default()
                    }),
                    update_mask: Some(mask(&paths)),
                })
                .await?
                .into_inner();
            out.record(&CategoryView::from(category))
        }
        CategoriesCommand::Delete { id, force } => {
            let deleted = client
                .delete_category(pb::DeleteCategoryRequest {
                    id: id.clone(),
                    force,
                })
                .await?
                .into_inner();
            let sentence = format!(
                "deleted category {id} ({} tags deleted, {} assignments removed)",
                deleted.deleted_tags, deleted.removed_assignments
            );
            out.outcome(
                &Deleted {
                    id,
                    deleted_tags: deleted.deleted_tags,
                    removed_assignments: deleted.removed_assignments,
                },
                &sentence,
            )
        }
    }
}

pub fn mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}
