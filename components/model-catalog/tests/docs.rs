//! docs/api.md's pixel-size tables are checked against the model table, cell by
//! cell and for completeness, so the docs cannot drift from what the translator
//! and the emulator use.

use aperture_models::Family;

fn api_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The markdown table rows (cells trimmed) of the first table after `heading`,
/// skipping the header and separator rows.
fn table_after(doc: &str, heading: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/api.md has no {heading:?}"));
    let lines: Vec<&str> = doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines[0]);
    (header, lines[2..].iter().map(|l| cells(l)).collect())
}

fn size_cell(family: Family, ratio: &str, size: &str) -> String {
    let (w, h) = family
        .pixel_size(ratio, size)
        .unwrap_or_else(|| panic!("{family:?} has no {ratio} at {size}"));
    format!("{w}×{h}")
}

#[test]
fn the_pro_and_3_1_flash_pixel_table_matches_the_model_table() {
    let doc = api_md();
    let (header, rows) = table_after(&doc, "### Pixel sizes");
    let sizes: Vec<&str> = header[1..]
        .iter()
        .map(|h| h.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sizes, ["512", "1K", "2K", "4K"]);
    let mut seen = Vec::new();
    for row in &rows {
        let ratio = row[0].split_whitespace().next().unwrap().to_string();
        for (size, cell) in sizes.iter().zip(&row[1..]) {
            // 3.1 Flash has every ratio and size of the table; Pro shares its ratios at 1K/2K/4K.
            assert_eq!(
                cell,
                &size_cell(Family::Flash31, &ratio, size),
                "{ratio} {size}"
            );
            if Family::Pro3.pixel_size(&ratio, size).is_some() {
                assert_eq!(
                    cell,
                    &size_cell(Family::Pro3, &ratio, size),
                    "Pro {ratio} {size}"
                );
            }
        }
        seen.push(ratio);
    }
    for family in [Family::Pro3, Family::Flash31] {
        for r in family.ratios() {
            assert!(
                seen.iter().any(|s| s == r.name),
                "{family:?} {} is missing",
                r.name
            );
        }
    }
}

#[test]
fn the_2_5_flash_pixel_table_matches_the_model_table() {
    let doc = api_md();
    let (header, rows) = table_after(&doc, "Gemini 2.5 Flash (1K only):");
    assert_eq!(header, ["ratio", "1K"]);
    let ratios: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let expected: Vec<&str> = Family::Flash25.ratios().iter().map(|r| r.name).collect();
    assert_eq!(ratios, expected);
    for row in &rows {
        assert_eq!(
            row[1],
            size_cell(Family::Flash25, &row[0], "1K"),
            "{}",
            row[0]
        );
    }
}

#[test]
fn the_models_table_lists_every_model_with_its_sizes() {
    let doc = api_md();
    let (_, rows) = table_after(&doc, "### Models");
    for model in aperture_models::MODELS {
        let row = rows
            .iter()
            .find(|r| {
                r[0].trim_start_matches('`')
                    .starts_with(&format!("{}`", model.id))
            })
            .unwrap_or_else(|| panic!("{} is not in the Models table", model.id));
        assert_eq!(row[2], format!("`{}`", model.upstream), "{}", model.id);
        let sizes = model.family.image_sizes().join(", ");
        assert!(
            row[3].starts_with(&sizes),
            "{}: sizes {:?} vs {sizes}",
            model.id,
            row[3]
        );
    }
}
