//! Image tokens as `calculate_img_tokens` in `litellm/litellm_core_utils/token_counter.py`
//! computes them for OpenAI models: a base cost, plus tiles of the image resized for high detail.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use crate::Unsupported;

/// litellm's image constants (`litellm.constants`), passed in by the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageLimits {
    pub base_tokens: i64,
    pub default_image_tokens: i64,
    pub default_width: u64,
    pub default_height: u64,
    pub max_short_side: u64,
    pub max_long_side: u64,
    pub tile_width: u64,
    pub tile_height: u64,
    /// `int(MAX_IMAGE_URL_DOWNLOAD_SIZE_MB * 1024 * 1024)`.
    pub max_image_bytes: usize,
}

impl Default for ImageLimits {
    /// The values of litellm 1.110.2.
    fn default() -> Self {
        ImageLimits {
            base_tokens: 85,
            default_image_tokens: 250,
            default_width: 300,
            default_height: 300,
            max_short_side: 768,
            max_long_side: 2000,
            tile_width: 512,
            tile_height: 512,
            max_image_bytes: 50 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    Low,
    High,
    Auto,
}

/// Python's `base64.b64decode(s, validate=True)`: standard alphabet, canonical padding, and
/// (unlike the `base64` crate's default) stray low bits in the last symbol are ignored.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes like `base64.b64decode(data, validate=True)`; `None` where Python raises.
pub fn decode_base64_strict(data: &str) -> Option<Vec<u8>> {
    STRICT.decode(data).ok()
}

/// Tokens for one image. `data` is the URL or data URL litellm was given.
pub fn image_tokens(
    data: &str,
    detail: Detail,
    use_default: bool,
    limits: &ImageLimits,
) -> Result<i64, Unsupported> {
    if use_default {
        return Ok(limits.default_image_tokens);
    }
    let dimensions = match detail {
        Detail::Low => return Ok(limits.base_tokens),
        Detail::Auto => auto_dimensions(data, limits),
        Detail::High => Some(high_detail_dimensions(data, limits)?),
    };
    let Some((width, height)) = dimensions else {
        return Ok(limits.base_tokens);
    };
    let (width, height) = resize_high_res(width, height, limits)?;
    let tiles = width.div_ceil(limits.tile_width) * height.div_ceil(limits.tile_height);
    Ok(limits.base_tokens + limits.base_tokens * 2 * tiles as i64)
}

/// `_auto_image_dimensions`: only bounded inline `data:image/...;base64,` URLs are read; anything
/// unreadable is `None` (litellm never fetches in auto mode).
fn auto_dimensions(data: &str, limits: &ImageLimits) -> Option<(u64, u64)> {
    if !data.starts_with("data:image/") || limits.max_image_bytes == 0 {
        return None;
    }
    let max_encoded = 4 * limits.max_image_bytes.div_ceil(3);
    // Python compares lengths in code points; the prefix check makes `data` ASCII up to the
    // comma, and a non-ASCII payload fails to decode either way.
    if crate::text::char_len(data) > max_encoded + 128 {
        return None;
    }
    let (header, encoded) = data.split_once(',')?;
    if crate::text::char_len(header) > 128
        || !header.ends_with(";base64")
        || encoded.len() > max_encoded
    {
        return None;
    }
    let bytes = decode_base64_strict(encoded)?;
    if bytes.len() > limits.max_image_bytes {
        return None;
    }
    if !matches!(
        image_type(&bytes),
        Some(ImageType::Png | ImageType::Gif | ImageType::Jpeg | ImageType::Webp)
    ) {
        return None;
    }
    let (width, height) = dimensions_from_bytes(&bytes, limits).ok()?;
    (width > 0 && height > 0).then_some((width, height))
}

/// `get_image_dimensions` (high detail): http(s) URLs are fetched by litellm and a lenient
/// base64 decode discards stray characters; both stay with litellm.
fn high_detail_dimensions(data: &str, limits: &ImageLimits) -> Result<(u64, u64), Unsupported> {
    if data.starts_with("http://") || data.starts_with("https://") {
        return Err(Unsupported::Image);
    }
    let (_, encoded) = data.split_once(',').ok_or(Unsupported::Image)?;
    let bytes = decode_base64_strict(encoded).ok_or(Unsupported::Image)?;
    dimensions_from_bytes(&bytes, limits).map_err(|_| Unsupported::Image)
}

/// `resize_image_high_res`, with Python's float arithmetic and `int()` truncation.
fn resize_high_res(
    width: u64,
    height: u64,
    limits: &ImageLimits,
) -> Result<(u64, u64), Unsupported> {
    if width <= limits.max_short_side && height <= limits.max_short_side {
        return Ok((width, height));
    }
    let (longer, shorter) = (width.max(height), width.min(height));
    if shorter == 0 {
        return Err(Unsupported::Image); // litellm raises ZeroDivisionError
    }
    let aspect_ratio = longer as f64 / shorter as f64;
    let (short, long) = (limits.max_short_side, limits.max_long_side);
    let fit = |resized_short: u64| {
        let resized_long = (resized_short as f64 * aspect_ratio) as u64;
        if resized_long > long {
            ((long as f64 / aspect_ratio) as u64, long)
        } else {
            (resized_short, resized_long)
        }
    };
    let (resized_short, resized_long) = fit(short);
    Ok(if width <= height {
        (resized_short, resized_long)
    } else {
        (resized_long, resized_short)
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImageType {
    Png,
    Gif,
    Jpeg,
    Heic,
    Webp,
}

/// `get_image_type`.
fn image_type(bytes: &[u8]) -> Option<ImageType> {
    let at = |start: usize, end: usize| bytes.get(start..end.min(bytes.len())).unwrap_or(&[]);
    if at(0, 8) == b"\x89PNG\r\n\x1a\n" {
        Some(ImageType::Png)
    } else if at(0, 4) == b"GIF8" && at(5, 6) == b"a" {
        Some(ImageType::Gif)
    } else if at(0, 3) == b"\xff\xd8\xff" {
        Some(ImageType::Jpeg)
    } else if at(4, 8) == b"ftyp" {
        Some(ImageType::Heic)
    } else if at(0, 4) == b"RIFF" && at(8, 12) == b"WEBP" {
        Some(ImageType::Webp)
    } else {
        None
    }
}

/// litellm raised (`struct.error` or `TypeError`) reading the header.
#[derive(Debug)]
pub struct Truncated;

fn exact<const N: usize>(bytes: &[u8], start: usize) -> Result<[u8; N], Truncated> {
    bytes
        .get(start..start + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(Truncated)
}

/// `_image_dimensions_from_bytes`, including its default size for unknown formats.
pub fn dimensions_from_bytes(bytes: &[u8], limits: &ImageLimits) -> Result<(u64, u64), Truncated> {
    let default = (limits.default_width, limits.default_height);
    match image_type(bytes) {
        Some(ImageType::Png) => {
            let [w, h] = [exact::<4>(bytes, 16)?, exact::<4>(bytes, 20)?];
            Ok((u32::from_be_bytes(w) as u64, u32::from_be_bytes(h) as u64))
        }
        Some(ImageType::Gif) => {
            let [w, h] = [exact::<2>(bytes, 6)?, exact::<2>(bytes, 8)?];
            Ok((u16::from_le_bytes(w) as u64, u16::from_le_bytes(h) as u64))
        }
        Some(ImageType::Jpeg) => jpeg_dimensions(bytes),
        Some(ImageType::Webp) => match bytes.get(12..16) {
            Some(b"VP8X") => {
                let [w0, w1, w2] = exact::<3>(bytes, 24)?;
                let [h0, h1, h2] = exact::<3>(bytes, 27)?;
                let w = u32::from_le_bytes([w0, w1, w2, 0]) as u64 + 1;
                let h = u32::from_le_bytes([h0, h1, h2, 0]) as u64 + 1;
                Ok((w, h))
            }
            Some(b"VP8 ") => {
                let w = u16::from_le_bytes(exact::<2>(bytes, 26)?) & 0x3FFF;
                let h = u16::from_le_bytes(exact::<2>(bytes, 28)?) & 0x3FFF;
                Ok((w as u64, h as u64))
            }
            Some(b"VP8L") => {
                let bits = u32::from_le_bytes(exact::<4>(bytes, 21)?);
                Ok((
                    (bits & 0x3FFF) as u64 + 1,
                    ((bits >> 14) & 0x3FFF) as u64 + 1,
                ))
            }
            _ => Ok(default),
        },
        Some(ImageType::Heic) | None => Ok(default),
    }
}

/// litellm's JPEG segment walk over an `io.BytesIO`: relative seeks clamp at 0, reads past the
/// end return fewer bytes, and a short read makes `ord`/`struct.unpack` raise.
fn jpeg_dimensions(bytes: &[u8]) -> Result<(u64, u64), Truncated> {
    let mut position: usize = 0;
    let read = |position: &mut usize, n: usize| -> &[u8] {
        let start = (*position).min(bytes.len());
        let end = (start + n).min(bytes.len());
        *position += n.min(bytes.len().saturating_sub(*position));
        &bytes[start..end]
    };
    let seek = |position: &mut usize, offset: i64| {
        *position = (*position as i64 + offset).max(0) as usize;
    };
    let is_frame =
        |marker: u8| (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
    let mut size: i64 = 2;
    let mut marker: u8 = 0;
    while !is_frame(marker) {
        seek(&mut position, size);
        let mut byte = *read(&mut position, 1).first().ok_or(Truncated)?;
        while byte == 0xFF {
            byte = *read(&mut position, 1).first().ok_or(Truncated)?;
        }
        marker = byte;
        let length: [u8; 2] = read(&mut position, 2).try_into().map_err(|_| Truncated)?;
        size = u16::from_be_bytes(length) as i64 - 2;
    }
    seek(&mut position, 1);
    let header: [u8; 4] = read(&mut position, 4).try_into().map_err(|_| Truncated)?;
    let height = u16::from_be_bytes([header[0], header[1]]) as u64;
    let width = u16::from_be_bytes([header[2], header[3]]) as u64;
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes
    }

    fn data_url(bytes: &[u8]) -> String {
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn low_detail_is_the_base_cost() {
        let limits = ImageLimits::default();
        assert_eq!(
            image_tokens("https://example.com/x.png", Detail::Low, false, &limits),
            Ok(85)
        );
    }

    #[test]
    fn default_count_wins_over_everything() {
        let limits = ImageLimits::default();
        assert_eq!(
            image_tokens("https://example.com/x.png", Detail::High, true, &limits),
            Ok(250)
        );
    }

    #[test]
    fn auto_detail_tiles_an_inline_image() {
        let limits = ImageLimits::default();
        // 1024x1024 -> 768x768 -> 2x2 tiles -> 85 + 170 * 4.
        assert_eq!(
            image_tokens(&data_url(&png(1024, 1024)), Detail::Auto, false, &limits),
            Ok(765)
        );
        // 4000x1000 landscape -> 3072x768 capped to 2000x500 -> 4x1 tiles.
        assert_eq!(
            image_tokens(&data_url(&png(4000, 1000)), Detail::Auto, false, &limits),
            Ok(85 + 170 * 4)
        );
    }

    #[test]
    fn auto_detail_never_fetches_urls() {
        let limits = ImageLimits::default();
        assert_eq!(
            image_tokens("https://example.com/x.png", Detail::Auto, false, &limits),
            Ok(85)
        );
    }

    #[test]
    fn high_detail_urls_stay_with_litellm() {
        let limits = ImageLimits::default();
        assert_eq!(
            image_tokens("https://example.com/x.png", Detail::High, false, &limits),
            Err(Unsupported::Image)
        );
    }

    #[test]
    fn truncated_png_is_unreadable() {
        let limits = ImageLimits::default();
        assert!(dimensions_from_bytes(b"\x89PNG\r\n\x1a\n", &limits).is_err());
        assert_eq!(
            image_tokens(
                &data_url(b"\x89PNG\r\n\x1a\n"),
                Detail::Auto,
                false,
                &limits
            ),
            Ok(85)
        );
    }

    #[test]
    fn strict_base64_matches_python_validate() {
        assert_eq!(decode_base64_strict("QQ=="), Some(b"A".to_vec()));
        assert_eq!(decode_base64_strict("QR=="), Some(b"A".to_vec()));
        assert_eq!(decode_base64_strict("QQ"), None);
        assert_eq!(decode_base64_strict("Q Q=="), None);
        assert_eq!(decode_base64_strict(""), Some(vec![]));
    }

    #[test]
    fn jpeg_walks_segments_to_the_frame_header() {
        // SOI, APP0 (length 4), SOF0 with height 300 and width 400.
        let bytes = b"\xff\xd8\xff\xe0\x00\x04\x00\x00\xff\xc0\x00\x11\x08\x01\x2c\x01\x90";
        assert_eq!(jpeg_dimensions(bytes).unwrap(), (400, 300));
        assert!(jpeg_dimensions(b"\xff\xd8\xff").is_err());
    }
}
