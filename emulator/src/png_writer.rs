//! A PNG writer for images made of periodic rows. Tests run the emulator in debug builds, where touching each
//! of a 4K image's 50 MB costs about a second; this writer never does. It emits the deflate stream directly:
//! one period of literals per distinct row, back-references for the rest of the row and for repeated rows,
//! and an Adler-32 assembled from per-period checksums. The output is an ordinary RGB PNG.

/// `rows` consecutive rows that are `period` (RGB bytes, a whole number of pixels) repeated to the image width.
#[derive(Debug, Clone)]
pub(crate) struct RowRun {
    pub period: Vec<u8>,
    pub rows: usize,
}

const ADLER_MOD: u64 = 65521;
/// Deflate's window: the farthest a back-reference may reach.
const WINDOW: usize = 32768;
const MAX_MATCH: usize = 258;

/// Adler-32 of a byte segment, kept composable: `a` = sum of bytes, `b` = sum of bytes weighted by their
/// distance from the segment's end, `n` = length (all modulo 65521 except `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AdlerSegment {
    a: u64,
    b: u64,
    n: u64,
}

impl AdlerSegment {
    const EMPTY: AdlerSegment = AdlerSegment { a: 0, b: 0, n: 0 };

    fn of(bytes: &[u8]) -> Self {
        let (mut a, mut b) = (0u64, 0u64);
        for chunk in bytes.chunks(4096) {
            for &d in chunk {
                a += d as u64;
                b += a;
            }
            a %= ADLER_MOD;
            b %= ADLER_MOD;
        }
        AdlerSegment {
            a,
            b,
            n: bytes.len() as u64,
        }
    }

    /// This segment followed by `next`.
    fn then(self, next: AdlerSegment) -> Self {
        AdlerSegment {
            a: (self.a + next.a) % ADLER_MOD,
            b: (self.b + next.b + (next.n % ADLER_MOD) * self.a) % ADLER_MOD,
            n: self.n + next.n,
        }
    }

    /// This segment `times` times in a row.
    fn repeated(self, mut times: u64) -> Self {
        let (mut result, mut power) = (AdlerSegment::EMPTY, self);
        while times > 0 {
            if times & 1 == 1 {
                result = result.then(power);
            }
            power = power.then(power);
            times >>= 1;
        }
        result
    }

    /// The zlib Adler-32 value of the whole stream this segment describes.
    fn checksum(self) -> u32 {
        let a = (1 + self.a) % ADLER_MOD;
        let b = (self.n % ADLER_MOD + self.b) % ADLER_MOD;
        ((b << 16) | a) as u32
    }
}

/// LSB-first bit writer, as deflate wants.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.len;
        self.len += bits;
        if self.len >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.len -= 32;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.len > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len = self.len.saturating_sub(8);
        }
        self.out
    }
}

fn reverse(code: u32, bits: u32) -> u64 {
    let mut r = 0u64;
    for i in 0..bits {
        r |= (((code >> i) & 1) as u64) << (bits - 1 - i);
    }
    r
}

const LENGTH_BASE: [usize; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [usize; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Deflate with the fixed Huffman code (RFC 1951 3.2.6): codes precomputed bit-reversed.
struct FixedDeflate {
    bits: Bits,
    literal: [(u64, u32); 286],
}

impl FixedDeflate {
    fn new(capacity: usize) -> Self {
        let mut literal = [(0u64, 0u32); 286];
        for (symbol, slot) in literal.iter_mut().enumerate() {
            let s = symbol as u32;
            let (code, bits) = match s {
                0..=143 => (0x30 + s, 8),
                144..=255 => (0x190 + s - 144, 9),
                256..=279 => (s - 256, 7),
                _ => (0xC0 + s - 280, 8),
            };
            *slot = (reverse(code, bits), bits);
        }
        let mut bits = Bits {
            out: Vec::with_capacity(capacity),
            acc: 0,
            len: 0,
        };
        bits.put(1, 1); // BFINAL: the only block
        bits.put(1, 2); // BTYPE 01: fixed Huffman
        FixedDeflate { bits, literal }
    }

    fn literal(&mut self, byte: u8) {
        let (code, bits) = self.literal[byte as usize];
        self.bits.put(code, bits);
    }

    /// The bits of one back-reference (length 3..=258, distance 1..=32768), for reuse.
    fn match_code(&self, length: usize, distance: usize) -> (u64, u32) {
        let li = LENGTH_BASE.iter().rposition(|&b| b <= length).unwrap_or(0);
        let di = DIST_BASE.iter().rposition(|&b| b <= distance).unwrap_or(0);
        let (lcode, lbits) = self.literal[257 + li];
        let mut value = lcode;
        let mut bits = lbits;
        value |= ((length - LENGTH_BASE[li]) as u64) << bits;
        bits += LENGTH_EXTRA[li];
        value |= reverse(di as u32, 5) << bits;
        bits += 5;
        value |= ((distance - DIST_BASE[di]) as u64) << bits;
        bits += DIST_EXTRA[di];
        (value, bits)
    }

    /// Copies `length` bytes from `distance` back; `byte_at(i)` gives the i-th copied byte, used for a tail
    /// too short to be a match.
    fn copy(&mut self, mut length: usize, distance: usize, byte_at: impl Fn(usize) -> u8) {
        let full = self.match_code(MAX_MATCH, distance);
        let mut done = 0;
        while length >= 3 {
            let mut take = length.min(MAX_MATCH);
            if length - take > 0 && length - take < 3 {
                take = length - 3;
            }
            if take == MAX_MATCH {
                self.bits.put(full.0, full.1);
            } else {
                let (value, bits) = self.match_code(take, distance);
                self.bits.put(value, bits);
            }
            length -= take;
            done += take;
        }
        for i in 0..length {
            self.literal(byte_at(done + i));
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let (code, bits) = self.literal[256];
        self.bits.put(code, bits);
        self.bits.finish()
    }
}

/// Encodes an 8-bit RGB PNG of `width` x `height` whose rows are given by `runs` (their row counts must add up
/// to `height`; a period must be a non-empty whole number of pixels).
pub(crate) fn encode_rgb(width: u32, height: u32, runs: &[RowRun]) -> Vec<u8> {
    let row_bytes = width as usize * 3;
    // Each row is a filter-type byte (0, None) and the pixels.
    let line = row_bytes + 1;
    let mut deflate = FixedDeflate::new(64 * 1024);
    let mut adler = AdlerSegment::EMPTY;
    for run in runs.iter().filter(|r| r.rows > 0 && !r.period.is_empty()) {
        let period = &run.period;
        let q = period.len();
        let pixel = |i: usize| period[i % q];
        // The first row: the filter byte, one period of literals, then the row copies itself.
        fresh_row(&mut deflate, period, row_bytes);
        let row_adler = AdlerSegment::of(&[0]).then(
            AdlerSegment::of(period)
                .repeated((row_bytes / q) as u64)
                .then(AdlerSegment::of(&period[..row_bytes % q])),
        );
        adler = adler.then(row_adler.repeated(run.rows as u64));
        // Further rows repeat the previous one.
        let line_byte = |j: usize| if j == 0 { 0 } else { pixel(j - 1) };
        for _ in 1..run.rows {
            if line <= WINDOW {
                deflate.copy(line, line, line_byte);
            } else {
                fresh_row(&mut deflate, period, row_bytes);
            }
        }
    }
    let deflated = deflate.finish();

    let mut zlib = Vec::with_capacity(deflated.len() + 6);
    zlib.extend_from_slice(&[0x78, 0x01]);
    zlib.extend_from_slice(&deflated);
    zlib.extend_from_slice(&adler.checksum().to_be_bytes());

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filtering, no interlace

    let mut png = Vec::with_capacity(zlib.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A row that cannot refer to the previous one: filter byte, one period of literals, then copies of itself.
fn fresh_row(deflate: &mut FixedDeflate, period: &[u8], row_bytes: usize) {
    let q = period.len();
    deflate.literal(0);
    let literals = if q <= WINDOW {
        q.min(row_bytes)
    } else {
        row_bytes
    };
    for i in 0..literals {
        deflate.literal(period[i % q]);
    }
    if row_bytes > literals {
        deflate.copy(row_bytes - literals, q, |i| period[(literals + i) % q]);
    }
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_adler(bytes: &[u8]) -> u32 {
        let mut a = simd_adler32::Adler32::new();
        a.write(bytes);
        a.finish()
    }

    #[test]
    fn adler_segments_compose() {
        let x: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let y: Vec<u8> = (0..333u32).map(|i| (i * 13 + 200) as u8).collect();
        let mut xy = x.clone();
        xy.extend_from_slice(&y);
        assert_eq!(
            AdlerSegment::of(&x).then(AdlerSegment::of(&y)).checksum(),
            naive_adler(&xy)
        );
        let x5: Vec<u8> = x.iter().copied().cycle().take(x.len() * 5).collect();
        assert_eq!(
            AdlerSegment::of(&x).repeated(5).checksum(),
            naive_adler(&x5)
        );
        assert_eq!(AdlerSegment::EMPTY.checksum(), 1);
    }

    fn expected_pixels(width: usize, runs: &[RowRun]) -> Vec<u8> {
        let mut out = Vec::new();
        for run in runs {
            let row: Vec<u8> = run.period.iter().copied().cycle().take(width * 3).collect();
            for _ in 0..run.rows {
                out.extend_from_slice(&row);
            }
        }
        out
    }

    fn check(width: u32, runs: Vec<RowRun>) {
        let height = runs.iter().map(|r| r.rows).sum::<usize>() as u32;
        let png_bytes = encode_rgb(width, height, &runs);
        // A strict zlib decoder verifies the Adler-32 ...
        let idat_len = u32::from_be_bytes(png_bytes[33..37].try_into().unwrap()) as usize;
        let zlib = &png_bytes[41..41 + idat_len];
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(zlib).expect("valid zlib");
        assert_eq!(raw.len(), (width as usize * 3 + 1) * height as usize);
        // ... and the png crate the chunks, CRCs and pixels.
        let decoder = png::Decoder::new(png_bytes.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (width, height));
        assert_eq!(
            &buf[..info.buffer_size()],
            expected_pixels(width as usize, &runs).as_slice()
        );
    }

    #[test]
    fn decodes_to_the_described_pixels() {
        let period = |n: usize, seed: u8| -> Vec<u8> {
            (0..n * 3)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
                .collect()
        };
        check(
            97,
            vec![
                RowRun {
                    period: period(5, 1),
                    rows: 3,
                },
                RowRun {
                    period: period(64, 2),
                    rows: 1,
                },
                RowRun {
                    period: period(200, 3),
                    rows: 7,
                },
                RowRun {
                    period: period(1, 4),
                    rows: 2,
                },
            ],
        );
        // Row tails of 1 and 2 bytes after whole matches, and a row wider than one period.
        for width in [86, 87, 88, 1, 2, 300] {
            check(
                width,
                vec![RowRun {
                    period: period(3, 9),
                    rows: 4,
                }],
            );
        }
        // Rows too long for the deflate window to reach back a whole row.
        check(
            11_000,
            vec![RowRun {
                period: period(7, 5),
                rows: 3,
            }],
        );
    }
}
