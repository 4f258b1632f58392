//! Fuzzes the label and field selector parsers (`apimachinery::selector`): no input may panic, and a
//! selector that parses prints as text that parses again. (Label selectors print to a fixed
//! point; field selectors need not: `=,=$,=@` prints its requirements in another order.) From
//! `apimachinery/`:
//!
//! ```sh
//! cargo +nightly fuzz run selector -- -max_len=9000 -max_total_time=300
//! ```

#![no_main]

use apimachinery::selector::{FieldSelector, LabelSelector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(labels) = LabelSelector::parse(text) {
        let printed = labels.to_string();
        let again = LabelSelector::parse(&printed).expect("a printed label selector parses");
        assert_eq!(again.to_string(), printed);
    }
    if let Ok(fields) = FieldSelector::parse(text) {
        let printed = fields.to_string();
        FieldSelector::parse(&printed).expect("a printed field selector parses");
    }
});
