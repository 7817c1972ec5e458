//! Scenarios for API keys and roles.

use tagd_proto::v1 as pb;
use tonic::Code;

use crate::fixtures::{self, assign, assignment, customer, history};
use crate::harness::{As, Auth, Backend, Options, TestServer, assert_status, backend_tests};

backend_tests!(
    roles_limit_what_keys_may_do,
    open_server_records_anonymous_actor,
    reflection_lists_services_in_both_versions,
);

async fn roles_limit_what_keys_may_do(backend: Backend) {
    let server = TestServer::start(backend).await;
    let new_category = || pb::CreateCategoryRequest {
        name: "兴趣".into(),
        ..Default::default()
    };

    assert_status(
        server
            .tags_as(As::Nobody)
            .list_categories(pb::ListCategoriesRequest::default())
            .await,
        Code::Unauthenticated,
        "missing authorization",
    );
    assert_status(
        server
            .tags_as(As::Stranger)
            .list_categories(pb::ListCategoriesRequest::default())
            .await,
        Code::Unauthenticated,
        "unknown API key",
    );

    // Readers read, and nothing more.
    server
        .tags_as(As::Reader)
        .list_categories(pb::ListCategoriesRequest::default())
        .await
        .unwrap();
    assert_status(
        server
            .tags_as(As::Reader)
            .create_category(new_category())
            .await,
        Code::PermissionDenied,
        "needs writer",
    );

    // Writers create and assign, but do not delete.
    let category = server
        .tags_as(As::Writer)
        .create_category(new_category())
        .await
        .unwrap()
        .into_inner();
    let tag = fixtures::tag(&server, &category.id, "户外", pb::ValueType::Flag, &[]).await;
    let zhang = customer(&server, "张伟").await;
    server
        .tagging_as(As::Writer)
        .assign_tags(pb::AssignTagsRequest {
            customer_id: zhang.id.clone(),
            assignments: vec![assignment(&tag.id, "")],
        })
        .await
        .unwrap();
    server
        .tagging_as(As::Reader)
        .list_customer_tags(pb::ListCustomerTagsRequest {
            customer_id: zhang.id.clone(),
        })
        .await
        .unwrap();
    assert_status(
        server
            .tagging_as(As::Reader)
            .assign_tags(pb::AssignTagsRequest {
                customer_id: zhang.id.clone(),
                assignments: vec![],
            })
            .await,
        Code::PermissionDenied,
        "reader",
    );
    assert_status(
        server
            .customers_as(As::Writer)
            .delete_customer(pb::DeleteCustomerRequest {
                id: zhang.id.clone(),
            })
            .await,
        Code::PermissionDenied,
        "needs admin",
    );
    assert_status(
        server
            .tags_as(As::Writer)
            .delete_tag(pb::DeleteTagRequest {
                id: tag.id.clone(),
                force: true,
            })
            .await,
        Code::PermissionDenied,
        "needs admin",
    );
    assert_eq!(
        history(&server, &zhang.id).await[0].actor,
        "crm",
        "history names the key"
    );

    // Admins delete.
    server
        .tags_as(As::Admin)
        .delete_tag(pb::DeleteTagRequest {
            id: tag.id.clone(),
            force: true,
        })
        .await
        .unwrap();

    // Health needs no key.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tagd.v1.TaggingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

async fn open_server_records_anonymous_actor(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Options {
            with_keys: false,
            ..Options::default()
        },
    )
    .await;
    let tag = fixtures::flag_tag(&server, "新客").await;
    let zhou = customer(&server, "周九").await;
    server
        .tagging_as(As::Nobody)
        .assign_tags(pb::AssignTagsRequest {
            customer_id: zhou.id.clone(),
            assignments: vec![assignment(&tag.id, "")],
        })
        .await
        .unwrap();
    assign(&server, &zhou.id, vec![assignment(&tag.id, "")]).await;
    assert_eq!(history(&server, &zhou.id).await[0].actor, "anonymous");
}

/// Lists services the way grpcurl does, over reflection v1 and v1alpha.
async fn reflection_lists_services_in_both_versions(backend: Backend) {
    use tonic_reflection::pb::{v1, v1alpha};

    let server = TestServer::start(backend).await;
    let expected = [
        "tagd.v1.TagService",
        "tagd.v1.CustomerService",
        "tagd.v1.TaggingService",
        "grpc.health.v1.Health",
    ];

    let mut client = v1::server_reflection_client::ServerReflectionClient::with_interceptor(
        server.channel(),
        Auth(As::Reader),
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected v1 reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1 lists {name}: {names:?}"
        );
    }

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::with_interceptor(
        server.channel(),
        Auth(As::Reader),
    );
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected v1alpha reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1alpha lists {name}: {names:?}"
        );
    }

    // Reflection is an RPC like any other: it needs a key.
    let mut anonymous = v1::server_reflection_client::ServerReflectionClient::with_interceptor(
        server.channel(),
        Auth(As::Nobody),
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    assert_status(
        anonymous
            .server_reflection_info(tokio_stream::iter([request]))
            .await,
        Code::Unauthenticated,
        "authorization",
    );
}
