//! Exit codes scripts can rely on, and the one error type that carries them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | usage or input error: bad flags, unreadable or malformed file, bad config |
//! | 2 | the server refused the request: `INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`; or a watched job or a rule run failed or was cancelled |
//! | 3 | the key was refused: `UNAUTHENTICATED`, `PERMISSION_DENIED` |
//! | 4 | the server is unreachable, `UNAVAILABLE`, or any other failure |
//! | 130 | Ctrl-C while watching a job (the job keeps running on the server) |

use std::fmt;

use tonic::{Code, Status};

pub const OK: u8 = 0;
pub const USAGE: u8 = 1;
pub const REFUSED: u8 = 2;
pub const AUTH: u8 = 3;
pub const UNAVAILABLE: u8 = 4;
/// The shell's code for SIGINT, kept when tagctl catches Ctrl-C to say the job goes on.
pub const INTERRUPTED: u8 = 130;

/// The exit-code table, shown at the end of `tagctl --help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  usage or input error (bad flags, unreadable or malformed file, bad config)
  2  the server refused the request: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
     FAILED_PRECONDITION; or the job `import` / `jobs watch` followed failed or was
     cancelled (a job that succeeded with rejected rows is 0), or a `rules run` failed
  3  the key was refused: UNAUTHENTICATED, PERMISSION_DENIED
  4  server unreachable, UNAVAILABLE, or any other failure
  130  Ctrl-C while watching a job; the job keeps running on the server

Errors go to stderr as `error: <gRPC code>: <message>` (or `error: <message>` for
local problems); results go to stdout.";

/// Why a command failed; `main` prints it as `error: {self}` and exits with [`Failure::exit_code`].
#[derive(Debug)]
pub enum Failure {
    /// A local problem: bad flags, files, or configuration.
    Usage(String),
    /// The server answered with an error; `context` says which part of a multi-call job failed.
    Server { status: Status, context: String },
    /// No connection could be made.
    Unreachable(String),
    /// A job tagctl followed ended FAILED or CANCELLED; the message has its error.
    Job(String),
    /// The user stopped watching a job with Ctrl-C.
    Interrupted(String),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    /// Adds where in a chunked job the call failed.
    pub fn with_context(self, context: String) -> Self {
        match self {
            Failure::Server { status, .. } => Failure::Server { status, context },
            other => other,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Unreachable(_) => UNAVAILABLE,
            // A job that did not finish is the server refusing the work, as far as
            // scripts are concerned: the request itself is what needs fixing.
            Failure::Job(_) => REFUSED,
            Failure::Interrupted(_) => INTERRUPTED,
            Failure::Server { status, .. } => code_exit(status.code()),
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Server {
            status,
            context: String::new(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Job(message) | Failure::Interrupted(message) => {
                f.write_str(message)
            }
            Failure::Unreachable(message) => {
                write!(f, "{}: {message}", code_name(Code::Unavailable))
            }
            Failure::Server { status, context } => {
                let message = status.message();
                let message = if message.is_empty() {
                    status.code().description()
                } else {
                    message
                };
                write!(f, "{}: {message}", code_name(status.code()))?;
                if !context.is_empty() {
                    write!(f, " ({context})")?;
                }
                Ok(())
            }
        }
    }
}

pub fn code_exit(code: Code) -> u8 {
    match code {
        Code::Ok => OK,
        Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition => {
            REFUSED
        }
        Code::Unauthenticated | Code::PermissionDenied => AUTH,
        _ => UNAVAILABLE,
    }
}

/// The canonical upper-case name (`NOT_FOUND`); tonic's `Display` gives a sentence instead.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_documented_exits() {
        for (code, exit) in [
            (Code::InvalidArgument, 2),
            (Code::NotFound, 2),
            (Code::AlreadyExists, 2),
            (Code::FailedPrecondition, 2),
            (Code::Unauthenticated, 3),
            (Code::PermissionDenied, 3),
            (Code::Unavailable, 4),
            (Code::Internal, 4),
            (Code::Aborted, 4),
        ] {
            assert_eq!(
                Failure::from(Status::new(code, "x")).exit_code(),
                exit,
                "{code:?}"
            );
        }
        assert_eq!(Failure::usage("bad").exit_code(), 1);
        assert_eq!(Failure::Unreachable("down".into()).exit_code(), 4);
        assert_eq!(Failure::Job("job x failed".into()).exit_code(), 2);
        assert_eq!(Failure::Interrupted("stopped".into()).exit_code(), 130);
    }

    #[test]
    fn messages_name_the_code() {
        let failure = Failure::from(Status::not_found("tag 42 not found"))
            .with_context("chunk 2 of 3".into());
        assert_eq!(
            failure.to_string(),
            "NOT_FOUND: tag 42 not found (chunk 2 of 3)"
        );
    }
}
