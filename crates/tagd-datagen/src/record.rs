//! One generated customer record, as raw text the way a channel would send
//! it, with its ground truth and the corruptions applied to it.

/// A customer record as it arrives from a channel: every field raw text,
/// plus the truth the generator knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerRecord {
    /// The real person behind the record: records sharing it are true duplicates.
    pub entity_id: u64,
    /// Set for people living in a generated household (hard negatives: never
    /// to be merged with another `entity_id` of the same household).
    pub household_id: Option<u64>,
    pub name: String,
    /// "男"/"女", "M"/"F", "male"/"female", or "" when missing.
    pub gender: String,
    /// A date in one of several textual forms, or "" when missing.
    pub birthday: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub company: String,
    pub channel: String,
    pub external_id: String,
    /// What was done to this record, in order (empty for a clean record).
    pub corruptions: Vec<Corruption>,
}

/// One way a duplicate record differs from the person's clean data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    /// Phones written with +86/0086, spaces, dashes, brackets or full-width digits.
    PhoneFormat,
    /// One digit of one phone (after the prefix) replaced.
    PhoneDigitTypo,
    /// The person has a new number: the record lists only a fresh mobile.
    PhoneChanged,
    /// Email letters' case changed (local part, domain or both).
    EmailCase,
    /// One given-name character replaced by one that sounds alike under the
    /// fuzzy-pinyin rules of input methods (模糊音: z/zh, c/ch, s/sh, n/l,
    /// r/l, h/f, an/ang, en/eng, in/ing): 敏 "min" typed as "ming" gives 明.
    NameTypo,
    /// One given-name character replaced by a same-sounding one (同音字).
    NameHomophone,
    /// The name written in pinyin, in either order and mixed case, with or
    /// without a space ("ZhangWei", "zhangwei").
    NamePinyin,
    /// One or two optional fields left out (never the name; the phone only
    /// when the record still has an email).
    MissingFields,
    /// Province/city without 省/市, the district folded into the detail line,
    /// or the whole address in the detail line.
    AddressVariant,
    /// The birthday in another textual form (1985/3/7, 19850307, 1985年3月7日).
    BirthdayFormat,
    /// Day and month swapped (only when both are ≤ 12 and differ).
    BirthdayTransposed,
}
