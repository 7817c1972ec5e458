//! The command line: global connection flags and one subcommand group per service noun.
//!
//! A new group (dedupe, segments) is one variant of [`Command`] plus one
//! module with its `run`; long server-side jobs share `jobs.rs` (`jobs watch`, the
//! progress bar and the summary).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tagd_proto::v1 as pb;

use crate::exit;

const ABOUT: &str = "Admin CLI for tagd (客户标签管理): categories, tags, customers, tagging, \
                     purchases, interactions, imports, cleansing, dedupe, segments and jobs over gRPC";

const LONG_ABOUT: &str = "\
Admin CLI for tagd (客户标签管理): categories, tags, customers, tagging, purchases,
interactions, imports, cleansing, dedupe, segments and jobs over gRPC.

Connection settings come from, highest first: the --server/--key flags, the
TAGCTL_SERVER/TAGCTL_KEY environment variables, the TOML config file (--config, or
~/.config/tagctl/config.toml when it exists; keys `server` and `key`), then the
default server http://127.0.0.1:50051 with no key. The key is never printed.

Output is a table for people; --json prints JSON for scripts. `list` commands
fetch every page unless --limit is given.";

#[derive(Debug, Parser)]
#[command(name = "tagctl", version, about = ABOUT, long_about = LONG_ABOUT, after_help = exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Connection and output")]
pub struct Global {
    /// tagd server URL [default: http://127.0.0.1:50051; env: TAGCTL_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// API key sent as `authorization: Bearer <KEY>` [env: TAGCTL_KEY]. Prefer the
    /// environment or the config file: flags are visible to other users in `ps`.
    #[arg(long, global = true, value_name = "KEY", hide_default_value = true)]
    pub key: Option<String>,
    /// TOML config file with `server` and `key` [default: ~/.config/tagctl/config.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tag categories (标签类别): list, create, update, delete
    #[command(subcommand, visible_alias = "category")]
    Categories(CategoriesCommand),
    /// Tags inside categories: list, get, create, update, delete
    #[command(subcommand, visible_alias = "tag")]
    Tags(TagsCommand),
    /// Customers (客户): list with filters, get, create, update, delete, batch upsert from a file
    #[command(subcommand, visible_alias = "customer")]
    Customers(Box<CustomersCommand>),
    /// A customer's tags: assign, remove, list, history, batch assign from a file
    #[command(subcommand)]
    Tagging(TaggingCommand),
    /// Orders (订单): record from a file, list a customer's
    #[command(subcommand, visible_alias = "purchase")]
    Purchases(PurchasesCommand),
    /// Contacts with customers (沟通记录): record, list, follow-ups due
    #[command(subcommand, visible_alias = "interaction")]
    Interactions(InteractionsCommand),
    /// The importer plugins the server has, with their options (--verbose)
    Importers {
        /// Also show each importer's options and description
        #[arg(long, short)]
        verbose: bool,
    },
    /// Import a channel file on the server through an importer plugin, showing progress
    #[command(long_about = IMPORT_HELP)]
    Import(Box<ImportArgs>),
    /// The rows an import rejected, with the reason for each
    ImportReport {
        /// Job id (printed by `import`, listed by `jobs list`)
        job_id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Undo a finished import: delete the customers it created, restore what it changed
    ImportRevert {
        /// Job id of the import
        job_id: String,
    },
    /// Server-side jobs (imports, cleansing; later dedupe): list, get, watch, cancel
    #[command(subcommand, visible_alias = "job")]
    Jobs(JobsCommand),
    /// Cleansing (数据清洗): standardise every customer's fields, and the report of what could not be
    #[command(subcommand)]
    Cleanse(CleanseCommand),
    /// Duplicate customers (去重): run a dedupe job, review doubtful pairs, merge, unmerge, find
    #[command(subcommand)]
    Dedupe(DedupeCommand),
    /// Segments (客户分群): saved conditions; count, list, snapshot, export and compare their members
    #[command(subcommand, visible_alias = "segment", long_about = SEGMENTS_HELP)]
    Segments(SegmentsCommand),
    /// Tag rules (规则打标): a tag kept on whoever matches a condition, on a schedule; templates
    #[command(subcommand, visible_alias = "rule", long_about = RULES_HELP)]
    Rules(RulesCommand),
}

const RULES_HELP: &str = "\
Tag rules (规则打标): a rule keeps a tag (and value) on exactly the customers who match
its condition (the condition language of segments), removing it from those who stop
matching. A rule never replaces a tag set by hand, an import or a merge unless
--overrides-manual; every change is in the tag history with source rule.

Templates install ready-made rules in one call:
  value-tier  价值等级 高/中/低价值 by spending quantiles
  rfm         R分 F分 M分 (1–5) and the eight RFM classes (RFM分类)
  lifecycle   生命周期 潜在客户 / 初次接触 / 意向客户 / 成交客户 / 老客户
  churn-risk  流失风险 高/中 from a falling purchase frequency";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateArg {
    ValueTier,
    Rfm,
    Lifecycle,
    ChurnRisk,
}

impl TemplateArg {
    pub fn to_proto(self) -> pb::RuleTemplate {
        match self {
            TemplateArg::ValueTier => pb::RuleTemplate::ValueTier,
            TemplateArg::Rfm => pb::RuleTemplate::Rfm,
            TemplateArg::Lifecycle => pb::RuleTemplate::Lifecycle,
            TemplateArg::ChurnRisk => pb::RuleTemplate::ChurnRisk,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List rules (with their last run)
    List {
        /// Only the rules that set this tag
        #[arg(long, value_name = "TAG_ID")]
        tag: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One rule with its condition, schedule and last run
    Get { rule_id: String },
    /// Create a rule
    Create {
        name: String,
        /// The tag the rule sets
        #[arg(long, value_name = "TAG_ID")]
        tag: String,
        /// The value it sets (none for a flag tag)
        #[arg(long, default_value = "")]
        value: String,
        #[command(flatten)]
        condition: ConditionArgs,
        /// Run every SECONDS (60 to a year); default: only when asked
        #[arg(long, value_name = "SECONDS")]
        every: Option<u64>,
        /// Replace assignments made by hand, imports and merges too
        #[arg(long)]
        overrides_manual: bool,
        /// Create it disabled
        #[arg(long)]
        disabled: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change a rule's name, description, value, condition, schedule or switches
    Update {
        rule_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        value: Option<String>,
        #[command(flatten)]
        condition: ConditionArgs,
        /// Run every SECONDS; 0: only when asked
        #[arg(long, value_name = "SECONDS")]
        every: Option<u64>,
        #[arg(long, value_name = "BOOL")]
        overrides_manual: Option<bool>,
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
    },
    /// Delete a rule (its tags stay unless --remove-assignments)
    Delete {
        rule_id: String,
        #[arg(long)]
        remove_assignments: bool,
    },
    /// What running a rule now would change, without changing anything
    Preview {
        rule_id: String,
        /// Customer ids to show per list
        #[arg(long, default_value_t = 10)]
        sample: u32,
    },
    /// Run one rule now, or every enabled rule
    Run { rule_id: Option<String> },
    /// A rule's runs, newest first
    Runs {
        rule_id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Install a ready-made template (its category, tags and rules)
    Install {
        #[arg(value_enum)]
        template: TemplateArg,
        /// Run the installed rules every SECONDS (default: daily)
        #[arg(long, value_name = "SECONDS")]
        every: Option<u64>,
        /// Install again: recompute thresholds, update the rules in place
        #[arg(long)]
        replace: bool,
    },
}

const SEGMENTS_HELP: &str = "\
Segments (客户分群): audiences defined by a condition, counted from the server's
in-memory index.

A condition combines tags, customer fields, metrics, purchases and other segments:
  tag(\"价值等级\") = \"高价值\" AND province = \"北京\" AND NOT has_tag(\"流失风险\")
  age between 25 and 35 OR attr(\"会员等级\") = \"金卡\"
  purchases(category = \"母婴\", days = 90) >= 2 AND in_segment(\"北京高价值\")
Give it with --condition TEXT, or --condition-file FILE (- for stdin).";

/// A condition as text, or the file holding it.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ConditionArgs {
    /// The condition text
    #[arg(long, value_name = "TEXT")]
    pub condition: Option<String>,
    /// A file holding the condition (- for stdin)
    #[arg(long, value_name = "FILE")]
    pub condition_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Xlsx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportColumnArg {
    Id,
    Name,
    Gender,
    Birthday,
    Phones,
    Emails,
    Province,
    City,
    District,
    Company,
    Channel,
    Tags,
}

impl ExportColumnArg {
    pub fn to_proto(self) -> pb::ExportColumn {
        match self {
            ExportColumnArg::Id => pb::ExportColumn::Id,
            ExportColumnArg::Name => pb::ExportColumn::Name,
            ExportColumnArg::Gender => pb::ExportColumn::Gender,
            ExportColumnArg::Birthday => pb::ExportColumn::Birthday,
            ExportColumnArg::Phones => pb::ExportColumn::Phones,
            ExportColumnArg::Emails => pb::ExportColumn::Emails,
            ExportColumnArg::Province => pb::ExportColumn::Province,
            ExportColumnArg::City => pb::ExportColumn::City,
            ExportColumnArg::District => pb::ExportColumn::District,
            ExportColumnArg::Company => pb::ExportColumn::Company,
            ExportColumnArg::Channel => pb::ExportColumn::Channel,
            ExportColumnArg::Tags => pb::ExportColumn::Tags,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// List segments
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// One segment with its condition
    Get { segment_id: String },
    /// Create a dynamic segment from a condition
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        condition: ConditionArgs,
    },
    /// Change a segment's name, description or condition
    Update {
        segment_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        condition: ConditionArgs,
    },
    /// Delete a segment (refused while another segment names it)
    Delete { segment_id: String },
    /// How many customers a segment (or an unsaved --condition) has now
    Count {
        /// The segment (or give --condition / --condition-file instead)
        segment_id: Option<String>,
        #[command(flatten)]
        condition: ConditionArgs,
    },
    /// A segment's customer ids, in id order
    Members {
        segment_id: String,
        #[command(flatten)]
        paging: Paging,
        /// Every member from one evaluation, streamed in large chunks
        /// (StreamSegmentMembers) instead of page by page: for large segments
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Freeze a segment's members now as a new static segment
    Snapshot {
        segment_id: String,
        /// Default: "<segment name> <date time>"
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Export a segment's members as CSV or XLSX (the 客户标签管理表格) to a file or stdout
    Export {
        segment_id: String,
        /// Columns in order, comma-separated (default: all)
        #[arg(long, value_enum, value_delimiter = ',')]
        columns: Vec<ExportColumnArg>,
        /// Chinese column headers (客户ID, 姓名, … 标签)
        #[arg(long)]
        chinese: bool,
        /// csv (streamed as written) or xlsx (one sheet)
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormatArg,
        /// Write to FILE instead of stdout
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Sizes and overlaps of two to ten segments
    Compare {
        #[arg(required = true, num_args = 2..=10)]
        segment_ids: Vec<String>,
    },
    /// Check a condition without running it; prints its canonical text
    Validate {
        #[command(flatten)]
        condition: ConditionArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DedupeCommand {
    /// Start a dedupe job and follow it: certain duplicates are merged, doubtful pairs queued
    Run(DedupeRunArgs),
    /// The review queue (open pairs by default), highest score first
    Candidates {
        #[arg(long, value_enum)]
        state: Option<CandidateStateArg>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Review open pairs one by one: both customers side by side with the field scores;
    /// answer merge, not a duplicate, skip or quit
    Review {
        /// Who survives a merge (default: the most complete)
        #[arg(long, value_enum)]
        survivor: Option<SurvivorArg>,
    },
    /// Settle one queued pair: merge it (default) or mark it not a duplicate
    Resolve {
        candidate_id: String,
        /// The pair is two different people; never propose it again
        #[arg(long)]
        not_duplicate: bool,
        /// For a merge: which of the two survives
        #[arg(long = "survivor", value_name = "CUSTOMER_ID")]
        survivor_id: Option<String>,
    },
    /// Merge two or more customers into one, in one transaction
    Merge {
        #[arg(required = true, num_args = 2..)]
        customer_ids: Vec<String>,
        /// Which of them survives (default: chosen by --rule)
        #[arg(long = "survivor", value_name = "CUSTOMER_ID")]
        survivor_id: Option<String>,
        #[arg(long, value_enum)]
        rule: Option<SurvivorArg>,
        /// Why, for the record (a ticket number)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Undo a merge: the merged customers come back exactly as they were
    Unmerge { merge_id: String },
    /// Merges, newest first
    Merges {
        /// Only merges involving this customer
        #[arg(long = "customer", value_name = "CUSTOMER_ID")]
        customer_id: Option<String>,
        /// Only merges a dedupe job made
        #[arg(long = "job", value_name = "JOB_ID")]
        job_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Stored customers that may be the same person as a customer or a draft
    Find {
        /// A stored customer (otherwise describe a draft with the flags below)
        #[arg(long = "customer", value_name = "CUSTOMER_ID", conflicts_with_all = ["name", "phones", "emails", "birthday"])]
        customer_id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "phone")]
        phones: Vec<String>,
        #[arg(long = "email")]
        emails: Vec<String>,
        #[arg(long)]
        birthday: Option<String>,
        /// At most N matches (1..100, default 10)
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CleanseCommand {
    /// Cleanse every customer, showing progress
    #[command(long_about = CLEANSE_HELP)]
    Run(CleanseArgs),
    /// A cleanse job's counts per field and every value it could not standardise
    Report {
        /// Job id (printed by `cleanse run`, listed by `jobs list`)
        job_id: String,
        /// Stop after N unfixable values (default: all)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
}

#[derive(Debug, Args)]
pub struct DedupeRunArgs {
    /// Report what would be merged and queued; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Compare everyone, not only the customers changed since the last run
    #[arg(long)]
    pub full: bool,
    /// Pairs scoring at least this (0..1) are merged (default 0.95)
    #[arg(long)]
    pub merge_threshold: Option<f64>,
    /// Pairs scoring at least this (0..1) are queued for review (default 0.5)
    #[arg(long)]
    pub review_threshold: Option<f64>,
    /// A blocking key (repeatable; default: all but pinyin)
    #[arg(long = "blocking-key", value_enum)]
    pub keys: Vec<BlockingKeyArg>,
    /// Who survives each merge (default: the most complete)
    #[arg(long, value_enum)]
    pub survivor: Option<SurvivorArg>,
    /// Print the job id and return without watching the job
    #[arg(long)]
    pub detach: bool,
}

const CLEANSE_HELP: &str = "\
Cleanse every customer on the server: names, phones (E.164), emails, birthdays,
provinces and cities (北京市 → 北京), address parts and company. Changed customers are
written batch by batch, each changed field recorded in the customer's field history
(`tagctl customers field-history ID`); values that cannot be standardised are left as
they were and listed by `tagctl cleanse report JOB_ID`. Only one cleanse (or dedupe)
runs at a time.

tagctl follows the job with a progress bar on stderr (customers scanned, changed,
unchanged, unfixable values) and then prints a summary. Ctrl-C stops watching, not the
job; --detach prints the job id and returns at once.

Exit status: 0 when the job succeeded, even with unfixable values; 2 when it was
refused (another is running), failed or was cancelled; otherwise as for every command.";

#[derive(Debug, Args)]
pub struct CleanseArgs {
    /// Report what would change; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Fold Gmail addresses: dots and +tags dropped, googlemail.com → gmail.com
    #[arg(long)]
    pub fold_gmail: bool,
    /// Lower-case the part of emails before '@' too
    #[arg(long)]
    pub lowercase_emails: bool,
    /// Only this field (repeatable): name, birthday, phones, emails, address,
    /// address.province, address.city, address.district, address.detail, company
    #[arg(long = "field", value_name = "FIELD")]
    pub fields: Vec<String>,
    /// Print the job id and return without following it
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SurvivorArg {
    MostComplete,
    Oldest,
    MostRecentlyUpdated,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BlockingKeyArg {
    Phone,
    Email,
    NameBirthday,
    NameCity,
    NameWordBirthday,
    Pinyin,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CandidateStateArg {
    Open,
    Merged,
    NotDuplicate,
}

const IMPORT_HELP: &str = "\
Import a channel file through an importer plugin (see `tagctl importers`).

FILE is a path on the server, below one of its `import_dirs`; a relative path is made
absolute against the current directory first, since tagctl and tagd usually share a
machine. The job runs on the server; tagctl follows it with a progress bar on stderr
(rows read, rows/s, ETA when the server knows the file size, created / updated /
unchanged / rejected) and then prints a summary, the first rejected rows and how to see
them all (`tagctl import-report JOB_ID`). Ctrl-C stops watching, not the job; --detach
prints the job id and returns at once.

Exit status: 0 when the job succeeded, even if it rejected rows (the summary says how
many); 2 when it failed or was cancelled (the job's error is printed); otherwise as for
every command.";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Importer name, e.g. spreadsheet
    pub importer: String,
    /// The file to import, as a path on the server (below one of its import_dirs)
    pub file: PathBuf,
    /// A plugin option as KEY=VALUE (repeatable); `tagctl importers --verbose` lists them
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
    /// Report what the import would do; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Leave customers that already exist (same channel and external id) as they are
    #[arg(long)]
    pub skip_existing: bool,
    /// Create categories and tags the file names that do not exist yet (otherwise
    /// rows with unknown tags are rejected)
    #[arg(long)]
    pub create_missing_tags: bool,
    /// Link a row no stored identity holds to the stored customer it duplicates
    /// when their score (as FindDuplicates gives it, 0..=1) reaches this, instead
    /// of creating a twin
    #[arg(long, value_name = "SCORE")]
    pub link_duplicates_at: Option<f64>,
    /// Print the job id and return without watching the job
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first
    List(Paging),
    /// Show one job
    Get {
        /// Job id
        job_id: String,
    },
    /// Follow a job with a progress bar until it ends, then print its summary
    /// (exit 2 if it failed or was cancelled)
    Watch {
        /// Job id
        job_id: String,
    },
    /// Ask a running job to stop (what it committed stays); a finished job is refused
    Cancel {
        /// Job id
        job_id: String,
    },
}

/// How many rows a `list` fetches.
#[derive(Debug, Args)]
pub struct Paging {
    /// Stop after N rows (default: fetch every page)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum CategoriesCommand {
    /// List categories
    List(Paging),
    /// Create a category
    Create {
        /// The category's name, unique (e.g. 价值等级)
        name: String,
        /// Free text shown to people choosing tags
        #[arg(long, default_value = "")]
        description: String,
        /// A customer holds at most one tag of this category; assigning another replaces it
        #[arg(long)]
        exclusive: bool,
    },
    /// Change a category's name, description or exclusivity (only the fields given)
    Update {
        /// Category id
        id: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        /// New description
        #[arg(long)]
        description: Option<String>,
        /// Whether a customer may hold only one tag of the category
        #[arg(long, value_name = "true|false")]
        exclusive: Option<bool>,
    },
    /// Delete a category (refused while its tags are assigned, unless --force)
    Delete {
        /// Category id
        id: String,
        /// Also delete its tags and remove their assignments (recorded in history)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagsCommand {
    /// Per tag: customers holding it, coverage, top values or a histogram, assignments by source
    Stats {
        /// Only the tags of this category id
        #[arg(long, value_name = "ID", conflicts_with = "tag")]
        category: Option<String>,
        /// Only this tag id
        #[arg(long, value_name = "ID")]
        tag: Option<String>,
        /// Most held values to show per enum/text tag (1..100)
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        top: Option<u32>,
        /// Histogram buckets per number tag (1..100)
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        buckets: Option<u32>,
        /// Also each segment's size over time (from its snapshots)
        #[arg(long)]
        segments: bool,
    },
    /// List tags, all or of one category
    List {
        /// Only tags of this category id
        #[arg(long, value_name = "ID")]
        category: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one tag
    Get {
        /// Tag id
        id: String,
    },
    /// Create a tag in a category
    Create {
        /// Category id the tag belongs to
        #[arg(long, value_name = "ID")]
        category: String,
        /// The tag's name, unique within the category (e.g. 高价值)
        name: String,
        /// What an assignment's value is
        #[arg(long = "type", value_enum, default_value = "flag")]
        value_type: ValueTypeArg,
        /// An allowed value of an enum tag (repeat the flag for each)
        #[arg(long = "enum-value", value_name = "VALUE")]
        enum_values: Vec<String>,
        /// Assignments without their own expiry expire after this long (e.g. 30d, 12h, 90m, 45s)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        validity: Option<prost_types::Duration>,
        /// Free text shown to people assigning the tag
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change a tag (only the fields given)
    Update {
        /// Tag id
        id: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        /// New description
        #[arg(long)]
        description: Option<String>,
        /// New value type (refused while the tag is assigned)
        #[arg(long = "type", value_enum)]
        value_type: Option<ValueTypeArg>,
        /// Replace the allowed values of an enum tag (repeat the flag for each)
        #[arg(long = "enum-value", value_name = "VALUE")]
        enum_values: Vec<String>,
        /// New default validity (e.g. 30d)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "no_validity")]
        validity: Option<prost_types::Duration>,
        /// Remove the default validity: assignments no longer expire by default
        #[arg(long)]
        no_validity: bool,
    },
    /// Delete a tag (refused while assigned, unless --force)
    Delete {
        /// Tag id
        id: String,
        /// Also remove its assignments (recorded in history)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// The values a customer's fields had before a cleanse (or merge, import, person)
    /// changed them, newest first
    FieldHistory {
        /// Customer id
        customer: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// List customers; filters combine (all must match)
    List {
        /// Name contains this text
        #[arg(long)]
        name: Option<String>,
        /// Has this phone (normalised like stored phones)
        #[arg(long)]
        phone: Option<String>,
        /// Has this email
        #[arg(long)]
        email: Option<String>,
        /// Holds this tag id (unexpired)
        #[arg(long, value_name = "TAG_ID")]
        tag: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one customer
    Get {
        /// Customer id
        id: String,
    },
    /// Create a customer
    Create {
        /// The customer's name (e.g. 张伟)
        name: String,
        #[command(flatten)]
        fields: CustomerFields,
    },
    /// Change a customer: each flag given replaces that field; --clear empties one
    Update {
        /// Customer id
        id: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: CustomerFields,
        /// Empty a field (repeatable)
        #[arg(long, value_enum, value_name = "FIELD")]
        clear: Vec<ClearField>,
    },
    /// Delete a customer with its tags and tag history
    Delete {
        /// Customer id
        id: String,
    },
    /// A customer's metrics: recency, orders and amounts per window, lifetime value,
    /// categories bought, last contact, frequency trend
    Metrics {
        /// Customer id
        id: String,
    },
    /// Create or update customers keyed by (channel, external_id) from a JSON or JSON Lines file
    #[command(long_about = UPSERT_HELP)]
    Upsert {
        /// A JSON array or JSON Lines file; `-` reads stdin
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Records per UpsertCustomers call; each call is all-or-nothing
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
        chunk_size: u32,
    },
}

const UPSERT_HELP: &str = "\
Create or update customers keyed by (channel, external_id) from a JSON or JSON Lines file.

Each record is one object; `channel`, `external_id` and `name` (for new customers) are
the essentials, every other field is optional:

  {\"channel\": \"shop\", \"external_id\": \"u-1001\", \"name\": \"张伟\",
   \"gender\": \"male\", \"birthday\": \"1990-05-01\", \"phones\": [\"138-0013-8000\"],
   \"emails\": [\"zw@example.com\"], \"address\": {\"province\": \"北京\", \"city\": \"北京\"},
   \"company\": \"…\", \"source_channel\": \"shop\",
   \"external_ids\": [{\"channel\": \"wecom\", \"external_id\": \"wx-9\"}],
   \"attributes\": {\"会员等级\": \"金卡\"}}

Empty fields leave stored values alone; phones, emails, external ids and attributes are
merged. Records are sent in chunks of --chunk-size; each chunk is all-or-nothing, and when
one fails the chunks before it stay applied (the error says which records failed).
Sending the same file twice changes nothing the second time.";

/// Customer fields shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct CustomerFields {
    /// Gender
    #[arg(long, value_enum)]
    pub gender: Option<GenderArg>,
    /// YYYY-MM-DD
    #[arg(long)]
    pub birthday: Option<String>,
    /// A phone number (repeatable); without a country code the server's region applies
    #[arg(long = "phone", value_name = "PHONE")]
    pub phones: Vec<String>,
    /// An email address (repeatable)
    #[arg(long = "email", value_name = "EMAIL")]
    pub emails: Vec<String>,
    /// Province of the address (e.g. 广东)
    #[arg(long)]
    pub province: Option<String>,
    /// City of the address
    #[arg(long)]
    pub city: Option<String>,
    /// District of the address
    #[arg(long)]
    pub district: Option<String>,
    /// Street address
    #[arg(long = "address", value_name = "DETAIL")]
    pub address_detail: Option<String>,
    /// Company the customer works for
    #[arg(long)]
    pub company: Option<String>,
    /// The channel the customer first came from
    #[arg(long)]
    pub source_channel: Option<String>,
    /// A channel identity as CHANNEL:ID (repeatable)
    #[arg(long = "external-id", value_name = "CHANNEL:ID", value_parser = parse_external_id)]
    pub external_ids: Vec<pb::ExternalId>,
    /// An attribute as KEY=VALUE (repeatable), e.g. 会员等级=金卡
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub attributes: Vec<(String, String)>,
}

/// Customer fields `update --clear` can empty; the names are the update-mask paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClearField {
    Gender,
    Birthday,
    Phones,
    Emails,
    Address,
    Company,
    SourceChannel,
    ExternalIds,
    Attributes,
}

impl ClearField {
    pub fn mask_path(self) -> &'static str {
        match self {
            ClearField::Gender => "gender",
            ClearField::Birthday => "birthday",
            ClearField::Phones => "phones",
            ClearField::Emails => "emails",
            ClearField::Address => "address",
            ClearField::Company => "company",
            ClearField::SourceChannel => "source_channel",
            ClearField::ExternalIds => "external_ids",
            ClearField::Attributes => "attributes",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PurchasesCommand {
    /// Record orders from a JSON or JSON Lines file (an order already recorded is unchanged)
    #[command(long_about = RECORD_PURCHASES_HELP)]
    Record {
        /// A JSON array or JSON Lines file; `-` reads stdin
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Orders per RecordPurchases call; each call is all-or-nothing
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
        chunk_size: u32,
    },
    /// A customer's orders with their items, newest first
    List {
        /// Customer id
        customer: String,
        #[command(flatten)]
        paging: Paging,
    },
}

const RECORD_PURCHASES_HELP: &str = "\
Record orders from a JSON or JSON Lines file, one order per record:

  {\"customer_id\": \"0193…\", \"channel\": \"shop\", \"order_id\": \"E1001\",
   \"time\": \"2026-11-28T10:00:00+08:00\", \"currency\": \"CNY\", \"total\": \"199.00\",
   \"status\": \"paid\", \"items\": [{\"product_id\": \"sku-1\", \"name\": \"奶粉\",
   \"category\": \"母婴\", \"quantity\": 2, \"unit_price\": \"99.50\"}]}

`time` is RFC 3339 or YYYY-MM-DD (UTC midnight); `currency` defaults to CNY, `total` to
the sum of the items; `status` and `items` are optional. An order is known by (channel,
order_id): one already recorded with the same content is reported unchanged, one with
different content is refused. Records are sent in chunks of --chunk-size; each chunk is
all-or-nothing, and when one fails the chunks before it stay applied (the error says
which record failed).";

#[derive(Debug, Subcommand)]
pub enum InteractionsCommand {
    /// Record a contact with a customer (the same contact recorded twice is stored once)
    Record {
        /// Customer id
        customer: String,
        /// How the contact happened
        #[arg(long, value_enum)]
        channel: InteractionChannelArg,
        /// What was said
        #[arg(long, default_value = "")]
        summary: String,
        /// When it happened: RFC 3339 time or YYYY-MM-DD (UTC midnight) [default: now]
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        time: Option<prost_types::Timestamp>,
        /// Who reached out
        #[arg(long, value_enum)]
        direction: Option<DirectionArg>,
        /// Who handled it
        #[arg(long, default_value = "")]
        staff: String,
        /// What came of it
        #[arg(long, default_value = "")]
        outcome: String,
        /// When to follow up, YYYY-MM-DD
        #[arg(long, value_name = "DATE")]
        follow_up: Option<String>,
    },
    /// A customer's interactions, newest first
    List {
        /// Customer id
        customer: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Follow-ups due before a date, across customers, oldest first (a later
    /// contact with the customer closes a follow-up)
    Due {
        /// YYYY-MM-DD; follow-ups dated before it are listed [default: tomorrow, so
        /// today's and overdue ones]
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InteractionChannelArg {
    Phone,
    Wechat,
    Email,
    Visit,
    Other,
}

impl From<InteractionChannelArg> for pb::InteractionChannel {
    fn from(value: InteractionChannelArg) -> Self {
        match value {
            InteractionChannelArg::Phone => pb::InteractionChannel::Phone,
            InteractionChannelArg::Wechat => pb::InteractionChannel::Wechat,
            InteractionChannelArg::Email => pb::InteractionChannel::Email,
            InteractionChannelArg::Visit => pb::InteractionChannel::Visit,
            InteractionChannelArg::Other => pb::InteractionChannel::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// The customer reached out
    Inbound,
    /// Staff reached out
    Outbound,
}

impl From<DirectionArg> for pb::InteractionDirection {
    fn from(value: DirectionArg) -> Self {
        match value {
            DirectionArg::Inbound => pb::InteractionDirection::Inbound,
            DirectionArg::Outbound => pb::InteractionDirection::Outbound,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TaggingCommand {
    /// Assign tags to a customer (one transaction)
    Assign {
        /// Customer id
        customer: String,
        /// TAG_ID for a flag tag, TAG_ID=VALUE otherwise (e.g. 0193…=5000)
        #[arg(required = true, value_name = "TAG_ID[=VALUE]", value_parser = parse_tag_value)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        provenance: Provenance,
        /// When the assignments expire: RFC 3339 time or YYYY-MM-DD (UTC midnight);
        /// default: the tag's default validity, if any
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        expires_at: Option<prost_types::Timestamp>,
    },
    /// Remove tags from a customer (tags it does not hold are ignored)
    Remove {
        /// Customer id
        customer: String,
        /// Tag ids
        #[arg(required = true, value_name = "TAG_ID")]
        tags: Vec<String>,
    },
    /// A customer's current, unexpired tags
    List {
        /// Customer id
        customer: String,
    },
    /// A customer's tag history, newest first
    History {
        /// Customer id
        customer: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Assign tags to many customers from a JSON or JSON Lines file
    #[command(long_about = BATCH_ASSIGN_HELP)]
    BatchAssign {
        /// A JSON array or JSON Lines file; `-` reads stdin
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Assignments per BatchAssignTags call; each call is all-or-nothing
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        chunk_size: u32,
        #[command(flatten)]
        provenance: Provenance,
    },
}

const BATCH_ASSIGN_HELP: &str = "\
Assign tags to many customers from a JSON or JSON Lines file, one assignment per record:

  {\"customer_id\": \"0193…\", \"tag_id\": \"0193…\", \"value\": \"5000\",
   \"source\": \"import\", \"source_ref\": \"job-7\", \"expires_at\": \"2026-01-01T00:00:00Z\"}

`value` is omitted for flag tags; `source`, `source_ref` and `expires_at` are optional
(--source and --source-ref give defaults). Records are sent in chunks of --chunk-size
assignments; each chunk is all-or-nothing, and when one fails the chunks before it stay
applied (the error says which records failed).";

/// Where assignments come from, recorded in history.
#[derive(Debug, Args)]
pub struct Provenance {
    /// Source recorded in history
    #[arg(long, value_enum, default_value = "manual")]
    pub source: SourceArg,
    /// What produced the assignment: a rule id, an import job id; free text
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub source_ref: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueTypeArg {
    Flag,
    Enum,
    Number,
    Text,
    Bool,
    Date,
}

impl From<ValueTypeArg> for pb::ValueType {
    fn from(value: ValueTypeArg) -> Self {
        match value {
            ValueTypeArg::Flag => pb::ValueType::Flag,
            ValueTypeArg::Enum => pb::ValueType::Enum,
            ValueTypeArg::Number => pb::ValueType::Number,
            ValueTypeArg::Text => pb::ValueType::Text,
            ValueTypeArg::Bool => pb::ValueType::Bool,
            ValueTypeArg::Date => pb::ValueType::Date,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceArg {
    Manual,
    Rule,
    Import,
    Merge,
}

impl From<SourceArg> for pb::TagSource {
    fn from(value: SourceArg) -> Self {
        match value {
            SourceArg::Manual => pb::TagSource::Manual,
            SourceArg::Rule => pb::TagSource::Rule,
            SourceArg::Import => pb::TagSource::Import,
            SourceArg::Merge => pb::TagSource::Merge,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenderArg {
    #[serde(alias = "男")]
    Male,
    #[serde(alias = "女")]
    Female,
    Other,
    Unspecified,
}

impl From<GenderArg> for pb::Gender {
    fn from(value: GenderArg) -> Self {
        match value {
            GenderArg::Male => pb::Gender::Male,
            GenderArg::Female => pb::Gender::Female,
            GenderArg::Other => pb::Gender::Other,
            GenderArg::Unspecified => pb::Gender::Unspecified,
        }
    }
}

/// `30d`, `12h`, `90m`, `45s` or bare seconds.
pub fn parse_duration(text: &str) -> Result<prost_types::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: expected a number with unit s, m, h or d (e.g. 30d)"
            ));
        }
    };
    let seconds = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&s| s > 0)
        .ok_or_else(|| {
            format!("{text:?}: expected a positive whole number with unit s, m, h or d")
        })?;
    Ok(prost_types::Duration { seconds, nanos: 0 })
}

/// RFC 3339 (`2026-01-01T08:00:00+08:00`) or a date, taken as UTC midnight.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| format!("{text:?}: expected an RFC 3339 time or YYYY-MM-DD"))?;
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

fn parse_tag_value(text: &str) -> Result<(String, String), String> {
    let (tag, value) = text.split_once('=').unwrap_or((text, ""));
    if tag.trim().is_empty() {
        return Err(format!("{text:?}: expected TAG_ID or TAG_ID=VALUE"));
    }
    Ok((tag.trim().to_owned(), value.to_owned()))
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

fn parse_external_id(text: &str) -> Result<pb::ExternalId, String> {
    match text.split_once(':') {
        Some((channel, id)) if !channel.trim().is_empty() && !id.trim().is_empty() => {
            Ok(pb::ExternalId {
                channel: channel.to_owned(),
                external_id: id.to_owned(),
            })
        }
        _ => Err(format!("{text:?}: expected CHANNEL:ID")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("30d").map(|d| d.seconds), Ok(30 * 86_400));
        assert_eq!(parse_duration("90m").map(|d| d.seconds), Ok(5400));
        assert_eq!(parse_duration("45").map(|d| d.seconds), Ok(45));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_dates() {
        let midnight = parse_time("2026-01-02").map(|t| t.seconds);
        let explicit = parse_time("2026-01-02T08:00:00+08:00").map(|t| t.seconds);
        assert_eq!(midnight, explicit);
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn tag_values_split_at_the_first_equals_sign() {
        assert_eq!(parse_tag_value("t1"), Ok(("t1".into(), String::new())));
        assert_eq!(parse_tag_value("t1=a=b"), Ok(("t1".into(), "a=b".into())));
        assert!(parse_tag_value("=x").is_err());
    }
}
