//! Sizes as operators write them: `500`, `64K`, `1T`, `1.5GiB`, `10GB`.
//!
//! A bare suffix or an `iB` suffix is binary (`1T` = `1TiB` = 2^40 bytes); a `B` suffix
//! without `i` is decimal (`1TB` = 10^12 bytes), as storage vendors write it.

/// Parses a size; the error says what is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let bad = || {
        format!(
            "'{text}' is not a size: use a number of bytes or a number with K, M, G, T, P \
             (binary, also KiB...) or KB, MB, GB, TB, PB (decimal)"
        )
    };
    if number.is_empty() {
        return Err(bad());
    }
    let unit = unit.to_ascii_uppercase();
    let (prefix, binary) = match unit.as_str() {
        "" | "B" => ("", true),
        u => {
            let (letter, rest) = u.split_at(1);
            match rest {
                "" | "IB" => (letter, true),
                "B" => (letter, false),
                _ => return Err(bad()),
            }
        }
    };
    let exponent: u32 = match prefix {
        "" => 0,
        "K" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        "P" => 5,
        _ => return Err(bad()),
    };
    let base: u128 = if binary { 1024 } else { 1000 };
    let multiplier = base.pow(exponent);
    // Fractions are exact to a millionth, enough for "1.5T".
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > 6 || (whole.is_empty() && fraction.is_empty()) {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let millionths: u128 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<6}");
        padded.parse().map_err(|_| bad())?
    };
    let bytes = whole
        .checked_mul(multiplier)
        .and_then(|w| w.checked_add(millionths * multiplier / 1_000_000))
        .ok_or_else(bad)?;
    u64::try_from(bytes).map_err(|_| format!("'{text}' is too large"))
}

/// A size for people: `1.5 TiB`, `512 B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_and_fractions() {
        assert_eq!(parse_size("500"), Ok(500));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("1tb"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("10 GB"), Ok(10_000_000_000));
        assert!(parse_size("16E").is_err());
        for bad in ["", "T", "1X", "1.2.3G", "-1", "1KiBB", "99999999999P"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1 << 40), "1.0 TiB");
        assert_eq!(format_size(1536), "1.5 KiB");
    }
}
