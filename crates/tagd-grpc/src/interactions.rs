//! `InteractionService`: recording contacts with customers and listing follow-ups due.

use std::sync::Arc;

use tagd_core::interactions::{
    self as domain, InteractionChannel, RawInteraction, RecordedInteraction,
};
use tagd_core::paging::PageRequest;
use tagd_proto::v1::interaction_service_server::InteractionService;
use tagd_proto::v1::{self as pb};
use tagd_store::Store;
use tonic::{Request, Response, Status};

use crate::convert::{self, id, invalid, required};
use crate::error::OrStatus;
use crate::purchases::rfc3339;

pub(crate) struct Interactions {
    pub store: Arc<Store>,
}

fn channel_word(field: &str, raw: i32) -> Result<&'static str, Status> {
    match pb::InteractionChannel::try_from(raw) {
        Ok(pb::InteractionChannel::Phone) => Ok(InteractionChannel::Phone.as_str()),
        Ok(pb::InteractionChannel::Wechat) => Ok(InteractionChannel::Wechat.as_str()),
        Ok(pb::InteractionChannel::Email) => Ok(InteractionChannel::Email.as_str()),
        Ok(pb::InteractionChannel::Visit) => Ok(InteractionChannel::Visit.as_str()),
        Ok(pb::InteractionChannel::Other) => Ok(InteractionChannel::Other.as_str()),
        Ok(pb::InteractionChannel::Unspecified) => Err(invalid(
            field,
            "must be set (PHONE, WECHAT, EMAIL, VISIT or OTHER)",
        )),
        Err(_) => Err(invalid(field, &format!("{raw} is not a channel"))),
    }
}

fn channel_to_proto(channel: InteractionChannel) -> pb::InteractionChannel {
    match channel {
        InteractionChannel::Phone => pb::InteractionChannel::Phone,
        InteractionChannel::Wechat => pb::InteractionChannel::Wechat,
        InteractionChannel::Email => pb::InteractionChannel::Email,
        InteractionChannel::Visit => pb::InteractionChannel::Visit,
        InteractionChannel::Other => pb::InteractionChannel::Other,
    }
}

fn direction_word(field: &str, raw: i32) -> Result<&'static str, Status> {
    match pb::InteractionDirection::try_from(raw) {
        Ok(pb::InteractionDirection::Unspecified) => Ok(""),
        Ok(pb::InteractionDirection::Inbound) => Ok("inbound"),
        Ok(pb::InteractionDirection::Outbound) => Ok("outbound"),
        Err(_) => Err(invalid(field, &format!("{raw} is not a direction"))),
    }
}

fn direction_to_proto(direction: &str) -> pb::InteractionDirection {
    match direction {
        "inbound" => pb::InteractionDirection::Inbound,
        "outbound" => pb::InteractionDirection::Outbound,
        _ => pb::InteractionDirection::Unspecified,
    }
}

pub(crate) fn interaction_to_proto(recorded: RecordedInteraction) -> pb::Interaction {
    let interaction = recorded.interaction;
    pb::Interaction {
        id: recorded.id,
        customer_id: recorded.customer_id,
        time: Some(convert::timestamp(interaction.occurred_at)),
        channel: channel_to_proto(interaction.channel).into(),
        direction: direction_to_proto(&interaction.direction).into(),
        staff: interaction.staff,
        summary: interaction.summary,
        outcome: interaction.outcome,
        next_follow_up: interaction
            .next_follow_up
            .map(|date| date.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        source_ref: recorded.source_ref,
        record_time: Some(convert::timestamp(recorded.recorded_at)),
    }
}

#[tonic::async_trait]
impl InteractionService for Interactions {
    async fn record_interaction(
        &self,
        request: Request<pb::RecordInteractionRequest>,
    ) -> Result<Response<pb::RecordInteractionResponse>, Status> {
        let request = request.into_inner();
        let raw = required("interaction", request.interaction.as_ref())?;
        let customer_id = id("interaction.customer_id", &raw.customer_id)?;
        let time = convert::from_timestamp("interaction.time", raw.time.as_ref())?
            .ok_or_else(|| invalid("interaction.time", "must be set"))?;
        let time = rfc3339(time);
        let interaction = domain::interaction(
            "interaction",
            &RawInteraction {
                time: &time,
                channel: channel_word("interaction.channel", raw.channel)?,
                direction: direction_word("interaction.direction", raw.direction)?,
                staff: &raw.staff,
                summary: &raw.summary,
                outcome: &raw.outcome,
                next_follow_up: &raw.next_follow_up,
            },
        )
        .or_status()?;
        let (recorded, created) = self
            .store
            .record_interaction(&customer_id, &interaction)
            .await
            .or_status()?;
        Ok(Response::new(pb::RecordInteractionResponse {
            interaction: Some(interaction_to_proto(recorded)),
            created,
        }))
    }

    async fn list_interactions(
        &self,
        request: Request<pb::ListInteractionsRequest>,
    ) -> Result<Response<pb::ListInteractionsResponse>, Status> {
        let request = request.into_inner();
        let customer_id = id("customer_id", &request.customer_id)?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self
            .store
            .list_interactions(&customer_id, &page)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListInteractionsResponse {
            interactions: page.items.into_iter().map(interaction_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_due_follow_ups(
        &self,
        request: Request<pb::ListDueFollowUpsRequest>,
    ) -> Result<Response<pb::ListDueFollowUpsResponse>, Status> {
        let request = request.into_inner();
        let before = domain::follow_up_date("before", &request.before)
            .or_status()?
            .ok_or_else(|| invalid("before", "must be set (YYYY-MM-DD)"))?;
        let page = PageRequest::parse(request.page_size, &request.page_token).or_status()?;
        let page = self.store.due_follow_ups(before, &page).await.or_status()?;
        Ok(Response::new(pb::ListDueFollowUpsResponse {
            interactions: page.items.into_iter().map(interaction_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
