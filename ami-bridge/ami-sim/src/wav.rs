//! WAV files as Asterisk's format_wav writes and reads them: 16-bit PCM, 8000 Hz, mono. A
//! call's recording (what MixMonitor leaves once the channel is gone), and how long a prompt
//! plays (a `.wav` URL is read by format_wav, which refuses anything else).

use std::time::Duration;

pub(crate) const SAMPLE_RATE: u32 = 8000;
const BYTES_PER_SAMPLE: u16 = 2;
const BYTE_RATE: u32 = SAMPLE_RATE * BYTES_PER_SAMPLE as u32;
/// RIFF header, `fmt ` chunk and `data` chunk header.
const HEADER_LEN: usize = 44;

/// Why a prompt cannot be played: the checks of format_wav.c's `check_header`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error(
        "not PCM 16-bit mono 8000 Hz (format {format}, {channels} channels, {rate} Hz, {block_align} bytes per sample)"
    )]
    Unsupported {
        format: u16,
        channels: u16,
        rate: u32,
        block_align: u16,
    },
    #[error("no data chunk")]
    NoData,
}

/// A recording `length` long: a quiet 400 Hz triangle wave (about -30 dBFS), the same bytes
/// for the same length.
pub(crate) fn recording(length: Duration) -> Vec<u8> {
    // Samples of whole 1/8000 s; a data chunk must fit a u32.
    let max_samples = (u32::MAX as usize - HEADER_LEN) / BYTES_PER_SAMPLE as usize;
    let samples = (length.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000)
        .min(max_samples as u128) as usize;
    let data_len = (samples * BYTES_PER_SAMPLE as usize) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&BYTE_RATE.to_le_bytes());
    out.extend_from_slice(&BYTES_PER_SAMPLE.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    // 400 Hz at 8000 Hz: a period of 20 samples, rising for 10, falling for 10.
    const PEAK: i32 = 1000;
    const STEP: i32 = 2 * PEAK / 10;
    for i in 0..samples {
        let phase = (i % 20) as i32;
        let v = if phase < 10 {
            -PEAK + STEP * phase
        } else {
            PEAK - STEP * (phase - 10)
        };
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out
}

/// How long a prompt plays: its data chunk (as much of it as the file holds) at its byte rate.
/// Refused, as format_wav refuses it, unless RIFF/WAVE, PCM, mono, 8000 Hz, 2 bytes a sample.
pub(crate) fn prompt_duration(bytes: &[u8]) -> Result<Duration, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut at = 12;
    let mut byte_rate = None;
    // Chunks in order, as format_wav walks them: `fmt ` checked, others skipped, up to `data`.
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(at + 4) as usize;
        let body = at + 8;
        if id == b"data" {
            let Some(rate) = byte_rate else {
                return Err(WavError::NoData);
            };
            let held = len.min(bytes.len() - body) as u64;
            return Ok(Duration::from_micros(held * 1_000_000 / u64::from(rate)));
        }
        if id == b"fmt " {
            if len < 16 || body + 16 > bytes.len() {
                return Err(WavError::NotWave);
            }
            let (format, channels, rate, block_align) = (
                u16_at(body),
                u16_at(body + 2),
                u32_at(body + 4),
                u16_at(body + 12),
            );
            if format != 1 || channels != 1 || rate != SAMPLE_RATE || block_align != 2 {
                return Err(WavError::Unsupported {
                    format,
                    channels,
                    rate,
                    block_align,
                });
            }
            // format_wav plays at the sample rate whatever the header's byte rate says.
            byte_rate = Some(BYTE_RATE);
        }
        at = body.saturating_add(len);
    }
    Err(WavError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_a_prompt_of_its_own_length() {
        let wav = recording(Duration::from_millis(1500));
        assert_eq!(wav.len(), HEADER_LEN + 1500 * 16);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(prompt_duration(&wav), Ok(Duration::from_millis(1500)));
        assert_eq!(wav, recording(Duration::from_millis(1500)), "deterministic");
        let samples: Vec<i16> = wav[HEADER_LEN..]
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert!(samples.iter().all(|s| s.abs() <= 1000), "quiet");
        assert!(samples.iter().any(|s| *s != 0), "not silence");
        assert_eq!(
            prompt_duration(&recording(Duration::ZERO)),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn other_chunks_are_skipped_and_a_short_file_plays_what_it_holds() {
        let wav = recording(Duration::from_millis(100));
        let mut with_list = wav[..36].to_vec();
        with_list.extend_from_slice(b"LIST");
        with_list.extend_from_slice(&4u32.to_le_bytes());
        with_list.extend_from_slice(b"INFO");
        with_list.extend_from_slice(&wav[36..]);
        assert_eq!(prompt_duration(&with_list), Ok(Duration::from_millis(100)));
        let cut = &wav[..HEADER_LEN + 800];
        assert_eq!(prompt_duration(cut), Ok(Duration::from_millis(50)));
    }

    #[test]
    fn what_format_wav_refuses() {
        assert_eq!(
            prompt_duration(b"<html>not found</html>"),
            Err(WavError::NotWave)
        );
        assert_eq!(prompt_duration(b""), Err(WavError::NotWave));
        let mut stereo = recording(Duration::from_millis(10));
        stereo[22] = 2;
        assert!(matches!(
            prompt_duration(&stereo),
            Err(WavError::Unsupported { channels: 2, .. })
        ));
        let mut wide = recording(Duration::from_millis(10));
        wide[24..28].copy_from_slice(&16_000u32.to_le_bytes());
        assert!(matches!(
            prompt_duration(&wide),
            Err(WavError::Unsupported { rate: 16_000, .. })
        ));
        assert_eq!(
            prompt_duration(&recording(Duration::ZERO)[..36]),
            Err(WavError::NoData)
        );
    }
}
