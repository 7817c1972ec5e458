//! Prints a few generated records, to eyeball what the generator writes.

use tagd_datagen::{Generator, GeneratorConfig};

#[expect(clippy::print_stdout, reason = "an example prints its output")]
fn main() -> Result<(), tagd_datagen::DatagenError> {
    let count = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    for record in Generator::new(42, GeneratorConfig::default())?.take(count) {
        println!("{record:?}");
    }
    Ok(())
}
