//! Deterministic generator of realistic Chinese-market customer records with
//! known duplicates, for measuring and testing duplicate detection. No I/O.
//!
//! # Use
//!
//! ```
//! use tagd_datagen::{Generator, GeneratorConfig};
//! let records: Vec<_> = Generator::new(42, GeneratorConfig::default())
//!     .expect("the default config is valid")
//!     .take(1_000)
//!     .collect();
//! // Records sharing an `entity_id` are the same person.
//! assert!(records.iter().any(|r| !r.corruptions.is_empty()));
//! ```
//!
//! The [`Generator`] is an endless iterator using constant memory (one
//! shuffle window of records, 4,096 by default), so a million records cost no
//! more memory than ten thousand; take as many as you need.
//!
//! # Determinism
//!
//! Everything is drawn from one `StdRng::seed_from_u64(seed)` (rand 0.9):
//! the same seed, config and crate version give byte-identical records, and
//! a shorter run is a prefix of a longer one. Changing a word list or the
//! generation code changes the stream, so measured figures name the seed.
//!
//! # What is generated
//!
//! People: a surname drawn by its census frequency (王 李 张 刘 陈 …, a few
//! compound ones like 欧阳), a given name that is a popular whole name 40% of
//! the time (伟, 芳, 秀英 …) or one or two characters from a male or female
//! pool; a birthday (85%, 1950–2005); one mobile (15% have two) with a real
//! 13x/15x/18x/19x prefix; an email (65%) built from the name's pinyin, a
//! year or initials, or a QQ number, at weighted domains (qq.com, 163.com,
//! 126.com, gmail.com, …); a province, city, district and street address;
//! a company (30%). Each record comes from one channel (wechat, taobao, jd, …)
//! with an external id in that channel's shape.
//!
//! A share [`GeneratorConfig::duplicate_rate`] of people arrive as more than
//! one record; the extra records are corrupted independently, each
//! corruption with its probability in [`CorruptionMix`]:
//!
//! | corruption | what it does |
//! |---|---|
//! | [`Corruption::PhoneFormat`] | `+86 138 0013 8000`, `+86-138-…`, `138-0013-8000`, `0086 …`, `(+86) …`, `86 …`, full-width `１３８　００１３　８０００` |
//! | [`Corruption::PhoneDigitTypo`] | one digit after the 3-digit prefix replaced |
//! | [`Corruption::PhoneChanged`] | the person got a new number: the record lists only a fresh mobile |
//! | [`Corruption::EmailCase`] | `ZHANGWEI85@QQ.COM`, `Zhangwei85@QQ.COM`, `zhangwei85@Qq.com` |
//! | [`Corruption::NameTypo`] | one given-name character replaced by one that sounds alike under the input methods' fuzzy-pinyin rules (模糊音: z/zh, c/ch, s/sh, n/l, r/l, h/f, an/ang, en/eng, in/ing), e.g. 张敏 → 张明 |
//! | [`Corruption::NameHomophone`] | one given-name character replaced by a same-sounding one (同音字), e.g. 张伟 → 张玮 |
//! | [`Corruption::NamePinyin`] | the name in pinyin: `Zhang Xiuying`, `Xiuying Zhang`, `ZHANG Xiuying`, `zhang xiuying`, `ZhangXiuying`, `zhangxiuying` (ü as v; surname readings like 曾 zeng) |
//! | [`Corruption::MissingFields`] | one or two of email, birthday, gender, district, detail, company, phone left out (the phone only if an email remains) |
//! | [`Corruption::AddressVariant`] | 广东 for 广东省, 深圳 for 深圳市, both, the district moved into the detail line, the whole address in the detail line, or no province |
//! | [`Corruption::BirthdayFormat`] | `1985/3/7`, `19850307`, `1985年3月7日`, `1985.03.07` instead of `1985-03-07` |
//! | [`Corruption::BirthdayTransposed`] | day and month swapped (when both ≤ 12 and different) |
//!
//! At most one of the three name corruptions hits a record. First records
//! are clean apart from their channel's own style (phones as `13800138000`,
//! `+8613800138000` or `138 0013 8000`; gender as 男/女, M/F, male/female or
//! missing).
//!
//! Hard negatives, which a matcher must never merge:
//! - households ([`GeneratorConfig::household_rate`]): 2–4 people at one
//!   address (a couple with different surnames, children with the father's
//!   surname), 40% of members also listing the head's phone; members always
//!   differ in given name and birthday. They share a `household_id`.
//! - namesakes ([`GeneratorConfig::namesake_rate`]): an unrelated person
//!   takes the exact name of a recent one, half the time in the same city; and
//!   popular names (张伟, 王芳) collide by themselves.
//! - chance collisions: random mobiles collide about (n²/6·10⁹) times.
//!
//! The crate is organised so other kinds of data (purchases, tags) can be
//! added beside customers: people live in `person`, rendering in `render`.

mod config;
mod error;
mod generator;
mod person;
mod record;
mod render;
mod romanise;
mod sound;
mod vocab;

pub use config::{CorruptionMix, GeneratorConfig};
pub use error::DatagenError;
pub use generator::Generator;
pub use record::{Corruption, CustomerRecord};
