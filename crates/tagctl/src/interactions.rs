//! `tagctl interactions …`: InteractionService — recording a contact, a customer's
//! contacts, and the follow-ups due.

use chrono::{Days, Local};
use serde::Serialize;
use tagd_proto::v1 as pb;

use crate::cli::InteractionsCommand;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::{Output, Time, View, cell, enum_name};
use crate::paging::fetch_all;

#[derive(Debug, Serialize)]
pub struct InteractionView {
    pub id: String,
    pub customer_id: String,
    pub time: Option<Time>,
    pub channel: String,
    pub direction: String,
    pub staff: String,
    pub summary: String,
    pub outcome: String,
    pub next_follow_up: String,
    pub source_ref: String,
    pub record_time: Option<Time>,
}

impl From<pb::Interaction> for InteractionView {
    fn from(interaction: pb::Interaction) -> Self {
        InteractionView {
            time: Time::from_proto(interaction.time.as_ref()),
            record_time: Time::from_proto(interaction.record_time.as_ref()),
            channel: pb::InteractionChannel::try_from(interaction.channel).map_or_else(
                |_| format!("unknown({})", interaction.channel),
                |c| enum_name(c.as_str_name(), "INTERACTION_CHANNEL_"),
            ),
            direction: match pb::InteractionDirection::try_from(interaction.direction) {
                Ok(pb::InteractionDirection::Unspecified) => String::new(),
                Ok(direction) => enum_name(direction.as_str_name(), "INTERACTION_DIRECTION_"),
                Err(_) => format!("unknown({})", interaction.direction),
            },
            id: interaction.id,
            customer_id: interaction.customer_id,
            staff: interaction.staff,
            summary: interaction.summary,
            outcome: interaction.outcome,
            next_follow_up: interaction.next_follow_up,
            source_ref: interaction.source_ref,
        }
    }
}

impl View for InteractionView {
    const COLUMNS: &'static [&'static str] = &[
        "TIME",
        "CHANNEL",
        "DIRECTION",
        "STAFF",
        "SUMMARY",
        "OUTCOME",
        "FOLLOW UP",
        "CUSTOMER",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            cell(self.time.as_ref()),
            self.channel.clone(),
            self.direction.clone(),
            self.staff.clone(),
            self.summary.clone(),
            self.outcome.clone(),
            self.next_follow_up.clone(),
            self.customer_id.clone(),
        ]
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("customer", self.customer_id.clone()),
            ("time", cell(self.time.as_ref())),
            ("channel", self.channel.clone()),
            ("direction", self.direction.clone()),
            ("staff", self.staff.clone()),
            ("summary", self.summary.clone()),
            ("outcome", self.outcome.clone()),
            ("follow up", self.next_follow_up.clone()),
            ("recorded", cell(self.record_time.as_ref())),
        ]
    }
}

pub async fn run(
    command: InteractionsCommand,
    connection: &Connection,
    out: Output,
) -> Result<(), Failure> {
    let mut client = connection.interactions();
    match command {
        InteractionsCommand::Record {
            customer,
            channel,
            summary,
            time,
            direction,
            staff,
            outcome,
            follow_up,
        } => {
            let time = time.unwrap_or_else(|| {
                let now = chrono::Utc::now();
                prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
                }
            });
            let response = client
                .record_interaction(pb::RecordInteractionRequest {
                    interaction: Some(pb::Interaction {
                        customer_id: customer,
                        time: Some(time),
                        channel: pb::InteractionChannel::from(channel).into(),
                        direction: direction
                            .map_or(0, |d| pb::InteractionDirection::from(d).into()),
                        staff,
                        summary,
                        outcome,
                        next_follow_up: follow_up.unwrap_or_default(),
                        ..pb::Interaction::default()
                    }),
                })
                .await?
                .into_inner();
            let view = response.interaction.map(InteractionView::from);
            if out.is_json() {
                #[derive(Serialize)]
                struct Recorded {
                    created: bool,
                    interaction: Option<InteractionView>,
                }
                return out.outcome(
                    &Recorded {
                        created: response.created,
                        interaction: view,
                    },
                    "",
                );
            }
            if !response.created {
                out.note("already recorded; nothing changed")?;
            }
            match view {
                Some(view) => out.record(&view),
                None => Ok(()),
            }
        }
        InteractionsCommand::List { customer, paging } => {
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let customer_id = customer.clone();
                async move {
                    let page = client
                        .list_interactions(pb::ListInteractionsRequest {
                            customer_id,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.interactions, page.next_page_token))
                }
            })
            .await?;
            out.list(
                &rows
                    .into_iter()
                    .map(InteractionView::from)
                    .collect::<Vec<_>>(),
            )
        }
        InteractionsCommand::Due { before, paging } => {
            // Tomorrow in the caller's time zone: everything due today or overdue.
            let before = before.unwrap_or_else(|| {
                let today = Local::now().date_naive();
                today
                    .checked_add_days(Days::new(1))
                    .unwrap_or(today)
                    .format("%Y-%m-%d")
                    .to_string()
            });
            let rows = fetch_all(paging.limit, |page_size, page_token| {
                let mut client = client.clone();
                let before = before.clone();
                async move {
                    let page = client
                        .list_due_follow_ups(pb::ListDueFollowUpsRequest {
                            before,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.interactions, page.next_page_token))
                }
            })
            .await?;
            out.list(
                &rows
                    .into_iter()
                    .map(InteractionView::from)
                    .collect::<Vec<_>>(),
            )
        }
    }
}
