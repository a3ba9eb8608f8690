//! What the tests of Lepton's crates share: how a test that needs something this machine may
//! lack (the shared data sets, a PostgreSQL server, a Chromium binary) finds it.
//!
//! On a laptop such a test skips where its variable is unset, and says so on stderr. Where
//! [`REQUIRE_ALL`] is `1` (`.ci/run` sets it for the README's test command) a test that would
//! skip fails instead, so that CI cannot pass on tests that did not run.

/// The environment variable that turns every skip into a failure.
pub const REQUIRE_ALL: &str = "LEPTON_TEST_REQUIRE_ALL";

/// The value of the environment variable `var` that `test` needs, or `None` where it is
/// unset: the test should then return, having said that it skips.
///
/// # Panics
///
/// Where `var` is unset and [`REQUIRE_ALL`] is `1`.
#[track_caller]
pub fn env_or_skip(var: &str, test: &str) -> Option<String> {
    found(std::env::var(var).ok(), var, test, required())
}

/// Says on stderr that the calling test skips because of `why`; the test should then return.
///
/// # Panics
///
/// Where [`REQUIRE_ALL`] is `1`: the test fails with `why`.
#[track_caller]
pub fn skip(why: &str) {
    skip_unless_required(why, required());
}

fn required() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1")
}

#[track_caller]
fn found(value: Option<String>, var: &str, test: &str, required: bool) -> Option<String> {
    if value.is_none() {
        skip_unless_required(&format!("{var} is unset: {test} cannot run"), required);
    }
    value
}

#[track_caller]
#[allow(clippy::panic)]
fn skip_unless_required(why: &str, required: bool) {
    if required {
        panic!("{why}, and {REQUIRE_ALL}=1 forbids skipping it");
    }
    eprintln!("skipping: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_skips_and_fails_where_every_test_must_run() {
        let var = "LEPTON_DATA_DIR";
        assert_eq!(found(None, var, "this test", false), None);
        assert_eq!(
            found(Some("/data".into()), var, "this test", true).as_deref(),
            Some("/data")
        );
        let failed = std::panic::catch_unwind(|| found(None, var, "this test", true))
            .expect_err("a skip where every test must run fails");
        let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("LEPTON_DATA_DIR is unset: this test cannot run"),
            "{message}"
        );
        assert!(message.contains(REQUIRE_ALL), "{message}");
        assert!(std::panic::catch_unwind(|| skip_unless_required("no data", true)).is_err());
        skip_unless_required("no data", false);
    }
}
