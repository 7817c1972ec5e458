//! Scenarios for customer records: create, read, update, delete, list, upsert.

use std::collections::HashMap;

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{self, UNKNOWN_ID, all_customers, assign, assignment, customer, mask};
use crate::harness::{Backend, TestServer, assert_status, backend_tests};

backend_tests!(
    customers_are_normalised_updated_and_deleted,
    bad_customer_input_is_rejected_by_field,
    customers_are_listed_and_filtered,
    upsert_is_idempotent_and_all_or_nothing,
    channel_identities_belong_to_one_customer,
    concurrent_reads_each_get_their_own_customer,
);

fn zhang_wei() -> pb::Customer {
    pb::Customer {
        name: "  张  伟 ".into(),
        gender: pb::Gender::Male.into(),
        birthday: "1990-01-02".into(),
        phones: vec![
            "138-0013-8000".into(),
            "+86 139 0013 9000".into(),
            "１３８００１３８０００".into(),
        ],
        emails: vec![" Zhang.Wei@Example.COM ".into()],
        address: Some(pb::Address {
            province: "广东".into(),
            city: "深圳".into(),
            district: "南山区".into(),
            detail: "科技园 1 号".into(),
        }),
        company: "示例科技".into(),
        source_channel: "Spreadsheet".into(),
        external_ids: vec![pb::ExternalId {
            channel: "wecom".into(),
            external_id: "wmABC".into(),
        }],
        attributes: HashMap::from([("会员等级".to_owned(), "金卡".to_owned())]),
        ..pb::Customer::default()
    }
}

async fn customers_are_normalised_updated_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut customers = server.customers();
    let created = customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(zhang_wei()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "张 伟");
    assert_eq!(
        created.phones,
        vec!["+8613800138000", "+8613900139000"],
        "E.164, duplicates dropped"
    );
    assert_eq!(created.emails, vec!["Zhang.Wei@example.com"]);
    assert_eq!(created.source_channel, "spreadsheet");
    assert_eq!(created.birthday, "1990-01-02");
    let fetched = customers
        .get_customer(pb::GetCustomerRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created, "what is read back is what was returned");

    let updated = customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: created.id.clone(),
                name: "张伟".into(),
                phones: vec!["not even looked at".into()],
                address: Some(pb::Address {
                    city: "广州".into(),
                    ..Default::default()
                }),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["name", "address.city"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "张伟");
    assert_eq!(
        updated.phones, created.phones,
        "fields outside the mask are kept"
    );
    let address = updated.address.clone().unwrap();
    assert_eq!(
        (address.province.as_str(), address.city.as_str()),
        ("广东", "广州")
    );
    assert!(
        fixtures::instant(updated.update_time.as_ref())
            > fixtures::instant(created.update_time.as_ref())
    );
    assert_eq!(updated.create_time, created.create_time);

    let cleared = customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: created.id.clone(),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["phones", "attributes", "birthday"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        cleared.phones.is_empty() && cleared.attributes.is_empty() && cleared.birthday.is_empty()
    );
    assert_eq!(cleared.emails, created.emails);

    let same = customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: created.id.clone(),
                name: " 张伟 ".into(),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        same, cleared,
        "an update that changes nothing keeps update_time"
    );

    let tag = fixtures::flag_tag(&server, "老客户").await;
    assign(&server, &created.id, vec![assignment(&tag.id, "")]).await;
    let deleted = customers
        .delete_customer(pb::DeleteCustomerRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.removed_assignments, 1);
    assert_status(
        customers
            .get_customer(pb::GetCustomerRequest {
                id: created.id.clone(),
            })
            .await,
        Code::NotFound,
        &created.id,
    );
    assert_status(
        customers
            .delete_customer(pb::DeleteCustomerRequest {
                id: created.id.clone(),
            })
            .await,
        Code::NotFound,
        "customer",
    );
    // The channel identity is free again.
    customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(zhang_wei()),
        })
        .await
        .unwrap();
}

async fn bad_customer_input_is_rejected_by_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut customers = server.customers();
    let create = |customer: pb::Customer| pb::CreateCustomerRequest {
        customer: Some(customer),
    };
    let cases: Vec<(pb::Customer, &str)> = vec![
        (
            pb::Customer {
                name: " ".into(),
                ..zhang_wei()
            },
            "customer.name: must not be empty",
        ),
        (
            pb::Customer {
                name: "名".repeat(201),
                ..zhang_wei()
            },
            "customer.name: is 201 characters",
        ),
        (
            pb::Customer {
                phones: vec!["13800138000".into(), "12345".into()],
                ..zhang_wei()
            },
            "customer.phones[1]",
        ),
        (
            pb::Customer {
                emails: vec!["zhang.example.com".into()],
                ..zhang_wei()
            },
            "customer.emails[0]",
        ),
        (
            pb::Customer {
                birthday: "1990/01/02".into(),
                ..zhang_wei()
            },
            "customer.birthday",
        ),
        (
            pb::Customer {
                birthday: "2999-01-01".into(),
                ..zhang_wei()
            },
            "customer.birthday",
        ),
        (
            pb::Customer {
                source_channel: "we com".into(),
                ..zhang_wei()
            },
            "customer.source_channel",
        ),
        (
            pb::Customer {
                gender: 9,
                ..zhang_wei()
            },
            "customer.gender",
        ),
        (
            pb::Customer {
                external_ids: vec![pb::ExternalId {
                    channel: "shop".into(),
                    external_id: " ".into(),
                }],
                ..zhang_wei()
            },
            "customer.external_ids[0].external_id",
        ),
    ];
    for (customer, needle) in cases {
        assert_status(
            customers.create_customer(create(customer)).await,
            Code::InvalidArgument,
            needle,
        );
    }
    assert_status(
        customers
            .create_customer(pb::CreateCustomerRequest { customer: None })
            .await,
        Code::InvalidArgument,
        "customer",
    );
    assert!(
        all_customers(&server).await.is_empty(),
        "nothing was written"
    );

    let stored = customer(&server, "李四").await;
    assert_status(
        customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: stored.id.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await,
        Code::InvalidArgument,
        "update_mask",
    );
    assert_status(
        customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: stored.id.clone(),
                    emails: vec!["bad".into()],
                    ..Default::default()
                }),
                update_mask: mask(&["emails"]),
            })
            .await,
        Code::InvalidArgument,
        "customer.emails[0]",
    );
    assert_status(
        customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: stored.id.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["shoe_size"]),
            })
            .await,
        Code::InvalidArgument,
        "shoe_size",
    );
    assert_status(
        customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: UNKNOWN_ID.into(),
                    name: "x".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            })
            .await,
        Code::NotFound,
        UNKNOWN_ID,
    );
    assert_status(
        customers
            .get_customer(pb::GetCustomerRequest { id: String::new() })
            .await,
        Code::InvalidArgument,
        "id: must be set",
    );
}

async fn customers_are_listed_and_filtered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut customers = server.customers();
    let people = [
        ("Zhang Wei", "13800138000", "zhang@example.com"),
        ("张伟", "13900139000", "zw@example.com"),
        ("李娜", "13700137000", "lina@example.com"),
        ("100%_real", "13600136000", "pct@example.com"),
        ("王芳", "13500135000", "wf@example.com"),
    ];
    let mut ids = Vec::new();
    for (name, phone, email) in people {
        let created = customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    name: name.into(),
                    phones: vec![phone.into()],
                    emails: vec![email.into()],
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(created.id);
    }
    let list = |request: pb::ListCustomersRequest| {
        let mut client = customers.clone();
        async move { client.list_customers(request).await.unwrap().into_inner() }
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(pb::ListCustomersRequest {
            page_size: 2,
            page_token: token.clone(),
            ..Default::default()
        })
        .await;
        assert!(page.customers.len() <= 2);
        seen.extend(page.customers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen, ids,
        "paging visits every customer once, in creation order"
    );

    let names = |page: pb::ListCustomersResponse| {
        page.customers
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
    };
    let filter = |name: &str, phone: &str, email: &str| pb::ListCustomersRequest {
        name_contains: name.into(),
        phone: phone.into(),
        email: email.into(),
        ..Default::default()
    };
    let cases = [
        (
            filter("zhang", "", ""),
            vec!["Zhang Wei"],
            "name, ignoring case",
        ),
        (
            filter("ＷＥＩ", "", ""),
            vec!["Zhang Wei"],
            "name, ignoring width",
        ),
        (filter("伟", "", ""), vec!["张伟"], "name, Chinese"),
        (
            filter("%_", "", ""),
            vec!["100%_real"],
            "LIKE wildcards are literal",
        ),
        (
            filter("", "+86 137-0013-7000", ""),
            vec!["李娜"],
            "phone, normalised",
        ),
        (
            filter("", "", "WF@EXAMPLE.com"),
            vec![],
            "the local part is case-sensitive",
        ),
        (
            filter("", "", "wf@EXAMPLE.com"),
            vec!["王芳"],
            "email, domain case-folded",
        ),
    ];
    for (request, expected, why) in cases {
        assert_eq!(names(list(request).await), expected, "{why}");
    }

    let vip = fixtures::flag_tag(&server, "VIP").await;
    assign(&server, &ids[2], vec![assignment(&vip.id, "")]).await;
    assign(&server, &ids[4], vec![assignment(&vip.id, "")]).await;
    assert_eq!(
        names(
            list(pb::ListCustomersRequest {
                tag_id: vip.id.clone(),
                ..Default::default()
            })
            .await
        ),
        vec!["李娜", "王芳"]
    );
    assert_eq!(
        names(
            list(pb::ListCustomersRequest {
                tag_id: vip.id.clone(),
                name_contains: "王".into(),
                ..Default::default()
            })
            .await
        ),
        vec!["王芳"]
    );
    assert_status(
        customers
            .list_customers(pb::ListCustomersRequest {
                phone: "12".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "phone",
    );
    assert_status(
        customers
            .list_customers(pb::ListCustomersRequest {
                page_size: 5000,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "page_size: is 5000; the maximum is 1000",
    );
}

fn entry(channel: &str, external_id: &str, customer: pb::Customer) -> pb::UpsertCustomerEntry {
    pb::UpsertCustomerEntry {
        key: Some(pb::ExternalId {
            channel: channel.into(),
            external_id: external_id.into(),
        }),
        customer: Some(customer),
    }
}

fn named(name: &str, phone: &str) -> pb::Customer {
    pb::Customer {
        name: name.into(),
        phones: vec![phone.into()],
        ..Default::default()
    }
}

async fn upsert_is_idempotent_and_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut customers = server.customers();
    let batch = vec![
        entry("shop", "1001", named("张伟", "13800138000")),
        entry("shop", "1002", named("李娜", "13900139000")),
        entry("wecom", "wm1", named("王芳", "13700137000")),
    ];
    let first = customers
        .upsert_customers(pb::UpsertCustomersRequest {
            entries: batch.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0));
    let before = all_customers(&server).await;
    let second = customers
        .upsert_customers(pb::UpsertCustomersRequest {
            entries: batch.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (second.created, second.updated, second.unchanged),
        (0, 0, 3)
    );
    assert_eq!(
        second
            .results
            .iter()
            .map(|r| r.customer_id.clone())
            .collect::<Vec<_>>(),
        first
            .results
            .iter()
            .map(|r| r.customer_id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_customers(&server).await,
        before,
        "an identical batch changes nothing, not even update_time"
    );

    // New facts merge in; nothing stored is dropped.
    let richer = vec![entry(
        "shop",
        "1001",
        pb::Customer {
            phones: vec!["13800138001".into()],
            company: "示例科技".into(),
            ..Default::default()
        },
    )];
    let third = customers
        .upsert_customers(pb::UpsertCustomersRequest { entries: richer })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((third.created, third.updated, third.unchanged), (0, 1, 0));
    let zhang = customers
        .get_customer(pb::GetCustomerRequest {
            id: first.results[0].customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zhang.name, "张伟");
    assert_eq!(zhang.phones, vec!["+8613800138000", "+8613800138001"]);
    assert_eq!(zhang.company, "示例科技");
    assert_eq!(zhang.source_channel, "shop");
    assert_eq!(
        zhang.external_ids,
        vec![pb::ExternalId {
            channel: "shop".into(),
            external_id: "1001".into()
        }]
    );

    // One bad row: the whole batch is refused, naming the row, and nothing is written.
    let snapshot = all_customers(&server).await;
    let bad = vec![
        entry("shop", "2001", named("赵六", "13600136000")),
        entry("shop", "2002", named("钱七", "not a phone")),
    ];
    assert_status(
        customers
            .upsert_customers(pb::UpsertCustomersRequest { entries: bad })
            .await,
        Code::InvalidArgument,
        "entries[1].customer.phones[0]",
    );
    let nameless = vec![
        entry("shop", "2001", named("赵六", "13600136000")),
        entry("shop", "2003", pb::Customer::default()),
    ];
    assert_status(
        customers
            .upsert_customers(pb::UpsertCustomersRequest { entries: nameless })
            .await,
        Code::InvalidArgument,
        "entries[1].customer.name",
    );
    let twice = vec![
        entry("shop", "3001", named("孙八", "13600136000")),
        entry("SHOP", "3001", named("孙八", "13600136000")),
    ];
    assert_status(
        customers
            .upsert_customers(pb::UpsertCustomersRequest { entries: twice })
            .await,
        Code::InvalidArgument,
        "entries[1].key",
    );
    let too_many: Vec<_> = (0..1001)
        .map(|i| entry("shop", &format!("x{i}"), named("多", "13600136000")))
        .collect();
    assert_status(
        customers
            .upsert_customers(pb::UpsertCustomersRequest { entries: too_many })
            .await,
        Code::InvalidArgument,
        "entries: has 1001 entries; the limit is 1000",
    );
    assert_eq!(
        all_customers(&server).await,
        snapshot,
        "refused batches wrote nothing"
    );

    // A full batch of 1,000 new customers goes through in one call.
    let big: Vec<_> = (0..1000)
        .map(|i| {
            entry(
                "crm",
                &format!("c{i}"),
                named(&format!("客户{i}"), &format!("1380000{i:04}")),
            )
        })
        .collect();
    let result = customers
        .upsert_customers(pb::UpsertCustomersRequest { entries: big })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result.created, 1000);
}

async fn channel_identities_belong_to_one_customer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut customers = server.customers();
    let with_id = |name: &str| pb::Customer {
        name: name.into(),
        external_ids: vec![pb::ExternalId {
            channel: "wecom".into(),
            external_id: "wm1".into(),
        }],
        ..Default::default()
    };
    let first = customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(with_id("张伟")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_status(
        customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(with_id("李娜")),
            })
            .await,
        Code::AlreadyExists,
        &first.id,
    );
    let other = customer(&server, "王芳").await;
    assert_status(
        customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: other.id.clone(),
                    ..with_id("王芳")
                }),
                update_mask: mask(&["external_ids"]),
            })
            .await,
        Code::AlreadyExists,
        "wecom:wm1",
    );
    // An upsert keyed by another channel may not steal the identity either.
    assert_status(
        customers
            .upsert_customers(pb::UpsertCustomersRequest {
                entries: vec![entry("shop", "9", with_id("赵六"))],
            })
            .await,
        Code::AlreadyExists,
        "wecom:wm1",
    );
    // Keyed by the identity itself, it updates the holder.
    let keyed = customers
        .upsert_customers(pb::UpsertCustomersRequest {
            entries: vec![entry(
                "wecom",
                "wm1",
                pb::Customer {
                    company: "示例".into(),
                    ..Default::default()
                },
            )],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keyed.results[0].customer_id, first.id);
    assert_eq!(keyed.updated, 1);
}

/// Many GetCustomer calls in flight at once (on MySQL they are fetched together, several
/// ids per statement): each caller gets its own customer, a missing id its own NOT_FOUND,
/// and a read that starts after an update sees it.
async fn concurrent_reads_each_get_their_own_customer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let created = fixtures::numbered_customers(&server, "读者 ", 24).await;
    let reads = (0..240).map(|call| {
        let mut customers = server.customers();
        // Every seventh call asks for an id that does not exist.
        let wanted = (call % 7 != 6).then(|| created[call % created.len()].clone());
        async move {
            let id = wanted
                .as_ref()
                .map_or(UNKNOWN_ID.to_owned(), |c| c.id.clone());
            let answer = customers.get_customer(pb::GetCustomerRequest { id }).await;
            (wanted, answer)
        }
    });
    for (wanted, answer) in futures::future::join_all(reads).await {
        match wanted {
            Some(customer) => assert_eq!(answer.unwrap().into_inner(), customer),
            None => assert_status(answer, Code::NotFound, UNKNOWN_ID),
        }
    }

    let renamed = created[3].id.clone();
    let mut customers = server.customers();
    customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: renamed.clone(),
                name: "改名的读者".into(),
                ..pb::Customer::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap();
    let reads = (0..48).map(|call| {
        let mut customers = server.customers();
        let id = created[call % created.len()].id.clone();
        async move {
            customers
                .get_customer(pb::GetCustomerRequest { id })
                .await
                .unwrap()
                .into_inner()
        }
    });
    let reads = futures::future::join_all(reads).await;
    let renamed_reads: Vec<&pb::Customer> = reads.iter().filter(|c| c.id == renamed).collect();
    assert_eq!(renamed_reads.len(), 2);
    for read in renamed_reads {
        assert_eq!(read.name, "改名的读者", "a read after the update sees it");
    }
}
