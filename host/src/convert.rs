//! The client's `output_format` honoured: when the upstream sent another image
//! format (Gemini 3 Pro and 3.1 Flash usually send JPEG, 2.5 Flash PNG), the image
//! is decoded and re-encoded with the `image` crate. CPU-heavy: call from `blocking`.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageFormat};

use crate::generated::GenImage;
use crate::policy::OutputFormat;

/// JPEG quality used when converting to JPEG (Gemini's own JPEGs look like ~90).
const JPEG_QUALITY: u8 = 90;

/// Why an image could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The upstream's image data is not base64.
    #[error("the upstream's image data is not base64")]
    NotBase64,
    /// The upstream's image could not be decoded.
    #[error("the upstream's {mime} image could not be decoded: {detail}")]
    Decode {
        /// The MIME type the upstream claimed.
        mime: String,
        /// The decoder's words.
        detail: String,
    },
    /// Encoding failed.
    #[error("the image could not be encoded as {0}: {1}")]
    Encode(&'static str, String),
}

/// The MIME type of a format.
pub fn mime_of(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Png => "image/png",
        OutputFormat::Jpeg => "image/jpeg",
        OutputFormat::Webp => "image/webp",
    }
}

/// `image` in `format`: unchanged when it already is, else decoded and re-encoded.
pub fn to_format(image: GenImage, format: OutputFormat) -> Result<GenImage, ConvertError> {
    let mime = mime_of(format);
    if image.mime_type.eq_ignore_ascii_case(mime) {
        return Ok(image);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64
        .decode(&image.b64)
        .map_err(|_| ConvertError::NotBase64)?;
    let decoded = image::load_from_memory(&bytes).map_err(|e| ConvertError::Decode {
        mime: image.mime_type.clone(),
        detail: e.to_string(),
    })?;
    drop(bytes);
    let mut out = Cursor::new(Vec::new());
    let encoded = match format {
        OutputFormat::Png => decoded.write_to(&mut out, ImageFormat::Png),
        OutputFormat::Webp => {
            DynamicImage::ImageRgba8(decoded.to_rgba8()).write_to(&mut out, ImageFormat::WebP)
        }
        OutputFormat::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(decoded.to_rgb8());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
        }
    };
    encoded.map_err(|e| ConvertError::Encode(mime, e.to_string()))?;
    Ok(GenImage {
        mime_type: mime.to_string(),
        b64: b64.encode(out.into_inner()).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_2x1() -> GenImage {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image::RgbImage::from_pixel(2, 1, image::Rgb([200, 10, 10])))
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        GenImage {
            mime_type: "image/png".into(),
            b64: base64::engine::general_purpose::STANDARD
                .encode(out.into_inner())
                .into(),
        }
    }

    fn decode(image: &GenImage) -> (ImageFormat, u32, u32) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&image.b64)
            .unwrap();
        let format = image::guess_format(&bytes).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        (format, img.width(), img.height())
    }

    #[test]
    fn converts_between_every_format_keeping_the_size() {
        let png = png_2x1();
        assert_eq!(to_format(png.clone(), OutputFormat::Png).unwrap(), png);
        for (format, expect) in [
            (OutputFormat::Jpeg, ImageFormat::Jpeg),
            (OutputFormat::Webp, ImageFormat::WebP),
        ] {
            let converted = to_format(png.clone(), format).unwrap();
            assert_eq!(converted.mime_type, mime_of(format));
            assert_eq!(decode(&converted), (expect, 2, 1));
            let back = to_format(converted, OutputFormat::Png).unwrap();
            assert_eq!(decode(&back), (ImageFormat::Png, 2, 1));
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let bad = GenImage {
            mime_type: "image/jpeg".into(),
            b64: "QUJDRA==".into(),
        };
        assert!(matches!(
            to_format(bad, OutputFormat::Png),
            Err(ConvertError::Decode { .. })
        ));
        let not_b64 = GenImage {
            mime_type: "image/jpeg".into(),
            b64: "***".into(),
        };
        assert!(matches!(
            to_format(not_b64, OutputFormat::Png),
            Err(ConvertError::NotBase64)
        ));
    }
}
