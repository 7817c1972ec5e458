//! Interactions (沟通记录): contacts with a customer — when, through which
//! channel, by whom, what came of it, and when to follow up.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{DomainError, DomainResult};
use crate::ids::content_id;
use crate::purchases;
use crate::text;

pub const MAX_STAFF_CHARS: usize = 100;
pub const MAX_SUMMARY_CHARS: usize = 2_000;
pub const MAX_OUTCOME_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InteractionChannel {
    Phone,
    Wechat,
    Email,
    Visit,
    Other,
}

impl InteractionChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Wechat => "wechat",
            Self::Email => "email",
            Self::Visit => "visit",
            Self::Other => "other",
        }
    }

    /// A source's word for a channel ("企业微信", "call", "上门"); unknown words are `Other`.
    pub fn from_source(raw: &str) -> Self {
        match text::key(raw).as_str() {
            "phone" | "call" | "tel" | "电话" | "手机" | "来电" | "去电" => Self::Phone,
            "wechat" | "wecom" | "weixin" | "微信" | "企业微信" | "企微" => Self::Wechat,
            "email" | "mail" | "e-mail" | "邮件" | "邮箱" => Self::Email,
            "visit" | "meeting" | "拜访" | "上门" | "面谈" | "到店" => Self::Visit,
            _ => Self::Other,
        }
    }
}

impl FromStr for InteractionChannel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "phone" => Self::Phone,
            "wechat" => Self::Wechat,
            "email" => Self::Email,
            "visit" => Self::Visit,
            "other" => Self::Other,
            other => return Err(format!("unknown interaction channel {other:?}")),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub occurred_at: NaiveDateTime,
    pub channel: InteractionChannel,
    /// "inbound", "outbound" or "".
    pub direction: String,
    pub staff: String,
    pub summary: String,
    pub outcome: String,
    pub next_follow_up: Option<NaiveDate>,
}

impl Interaction {
    /// The same contact recorded twice (a file imported again) has the same key.
    pub fn content_key(&self, customer_id: &str) -> String {
        content_id(&[
            customer_id,
            &self.occurred_at.to_string(),
            self.channel.as_str(),
            &self.staff,
            &self.summary,
        ])
    }
}

/// An interaction as stored, with who it was with and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedInteraction {
    pub id: String,
    pub customer_id: String,
    pub interaction: Interaction,
    /// The import job that wrote it; "" when recorded through the API.
    pub source_ref: String,
    pub recorded_at: NaiveDateTime,
}

/// An interaction as a source wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawInteraction<'a> {
    pub time: &'a str,
    pub channel: &'a str,
    pub direction: &'a str,
    pub staff: &'a str,
    pub summary: &'a str,
    pub outcome: &'a str,
    pub next_follow_up: &'a str,
}

/// A follow-up date, "YYYY-MM-DD" or "YYYY/MM/DD"; `None` when empty.
pub fn follow_up_date(field: &str, raw: &str) -> DomainResult<Option<NaiveDate>> {
    match text::normalize(raw).as_str() {
        "" => Ok(None),
        date => NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(date, "%Y/%m/%d"))
            .map(Some)
            .map_err(|_| {
                DomainError::invalid(field, format!("{raw:?} is not a date (YYYY-MM-DD)"))
            }),
    }
}

pub fn interaction(field: &str, raw: &RawInteraction<'_>) -> DomainResult<Interaction> {
    let direction = match text::key(raw.direction).as_str() {
        "" => String::new(),
        "inbound" | "in" | "呼入" | "来访" => "inbound".to_owned(),
        "outbound" | "out" | "呼出" | "回访" => "outbound".to_owned(),
        _ => {
            return Err(DomainError::invalid(
                format!("{field}.direction"),
                format!("{:?} is neither inbound nor outbound", raw.direction),
            ));
        }
    };
    let next_follow_up = follow_up_date(&format!("{field}.next_follow_up"), raw.next_follow_up)?;
    Ok(Interaction {
        occurred_at: purchases::time(&format!("{field}.time"), raw.time)?,
        channel: InteractionChannel::from_source(raw.channel),
        direction,
        staff: text::optional(&format!("{field}.staff"), raw.staff, MAX_STAFF_CHARS)?,
        summary: text::free_text(&format!("{field}.summary"), raw.summary, MAX_SUMMARY_CHARS)?,
        outcome: text::free_text(&format!("{field}.outcome"), raw.outcome, MAX_OUTCOME_CHARS)?,
        next_follow_up,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_recognised_in_both_languages() {
        assert_eq!(
            InteractionChannel::from_source("企业微信"),
            InteractionChannel::Wechat
        );
        assert_eq!(
            InteractionChannel::from_source("WeCom"),
            InteractionChannel::Wechat
        );
        assert_eq!(
            InteractionChannel::from_source("电话"),
            InteractionChannel::Phone
        );
        assert_eq!(
            InteractionChannel::from_source("传真"),
            InteractionChannel::Other
        );
    }

    #[test]
    fn interactions_are_checked_and_keyed_by_content() {
        let raw = RawInteraction {
            time: "2023-11-14T22:13:20Z",
            channel: "wecom",
            staff: "zhangsan",
            summary: "添加为企业微信联系人",
            next_follow_up: "2024-01-05",
            ..RawInteraction::default()
        };
        let first = interaction("interactions[0]", &raw).unwrap();
        assert_eq!(first.next_follow_up.unwrap().to_string(), "2024-01-05");
        let again = interaction("interactions[0]", &raw).unwrap();
        assert_eq!(first.content_key("c1"), again.content_key("c1"));
        assert_ne!(first.content_key("c1"), first.content_key("c2"));
        let bad = RawInteraction {
            direction: "sideways",
            ..raw
        };
        let error = interaction("interactions[0]", &bad).unwrap_err();
        assert_eq!(error.parts().0, "interactions[0].direction");
    }
}
