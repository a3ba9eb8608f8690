//! A real study's report, rendered by headless Chromium: the page's plots exist in the
//! browser's DOM with their data points, and a screenshot shows them (red pruned curves,
//! blue complete trials), not a blank page.
//!
//! Needs Chromium: set `LEPTON_TEST_CHROMIUM` to its binary (`.ci/run` installs Debian's
//! `chromium` and sets it); without it the test says that it skips.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::path::Path;
use std::process::Command;

fn lepton(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lepton"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs headless Chromium on `page` with `args`; returns its stdout.
fn chromium(binary: &str, page: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the first attribute `name` after position `from` in `html`.
fn attribute<'a>(html: &'a str, from: usize, name: &str) -> &'a str {
    let tag = format!(" {name}=\"");
    let at = from + html[from..].find(&tag).unwrap() + tag.len();
    &html[at..at + html[at..].find('"').unwrap()]
}

/// The number in the first attribute `name` after position `from` in `html`.
fn number(html: &str, from: usize, name: &str) -> usize {
    attribute(html, from, name).parse().unwrap()
}

#[test]
fn chromium_renders_a_real_studys_plots() {
    let Some(binary) = lepton_test_support::env_or_skip("LEPTON_TEST_CHROMIUM", "the browser test")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("study.db").display());
    let finished = lepton(&[
        "worker",
        "--storage",
        &url,
        "--study",
        "curves",
        "--objective",
        "curves",
        "--sampler",
        "tpe",
        "--pruner",
        "asha",
        "--trials",
        "200",
        "--seed",
        "1",
    ]);
    let complete = finished.matches("\"complete\"").count();
    let pruned = finished.matches("\"pruned\"").count();
    assert!(complete > 0 && pruned > 0, "{finished}");
    let page = dir.path().join("report.html");
    lepton(&[
        "study",
        "report",
        "--storage",
        &url,
        "--study",
        "curves",
        "--out",
        page.to_str().unwrap(),
    ]);

    // The DOM after the page's script ran and it painted.
    let dom = chromium(
        &binary,
        &page,
        &["--virtual-time-budget=10000", "--dump-dom"],
    );
    let body = dom.find("<body").unwrap();
    let layout_ms = number(&dom, body, "data-layout-ms");
    eprintln!("parsed and laid out in Chromium after {layout_ms} ms");
    for plot in ["history", "intermediate", "parallel", "importance", "slice"] {
        let figure = dom
            .find(&format!("data-plot=\"{plot}\""))
            .unwrap_or_else(|| panic!("no {plot} figure in the DOM"));
        let end = figure + dom[figure..].find("</figure>").unwrap();
        assert!(dom[figure..end].contains("<svg"), "{plot} has no svg");
    }
    let history = dom.find("data-plot=\"history\"").unwrap();
    assert_eq!(number(&dom, history, "data-points"), complete);
    let parallel = dom.find("data-plot=\"parallel\"").unwrap();
    assert_eq!(number(&dom, parallel, "data-lines"), complete);
    // Every data path the browser holds draws something.
    for (at, _) in dom.match_indices("<path stroke=") {
        let d = attribute(&dom, at, "d");
        assert!(d.starts_with('M') && d.len() > 4, "an empty path: {d:?}");
    }

    // The screenshot: the plots' colours are on screen.
    let shot = dir.path().join("report.png");
    chromium(
        &binary,
        &page,
        &[
            "--window-size=1300,2600",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let mut reader =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()))
            .read_info()
            .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let (mut red, mut blue, mut ink) = (0usize, 0usize, 0usize);
    for p in pixels[..info.buffer_size()].chunks(channels) {
        let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
        if r < 240 || g < 240 || b < 240 {
            ink += 1;
        }
        if r > 150 && g < 120 && b < 120 {
            red += 1;
        }
        if b > 150 && r < 120 && g < 170 {
            blue += 1;
        }
    }
    let total = (info.width * info.height) as usize;
    eprintln!("screenshot: {ink} of {total} pixels inked, {red} red, {blue} blue");
    assert!(
        ink * 50 > total,
        "the page is nearly blank: {ink} of {total}"
    );
    assert!(red > 200, "no pruned curves on screen ({red} red pixels)");
    assert!(
        blue > 200,
        "no complete trials on screen ({blue} blue pixels)"
    );
}
