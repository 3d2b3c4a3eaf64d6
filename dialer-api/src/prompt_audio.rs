//! Prompts as the PBX plays them: 16-bit PCM WAV, mono, 8 kHz. Asterisk's `wav` format (what a
//! URL ending in `.wav` is played with) reads 8 kHz only, and the calls' channels (ulaw, alaw)
//! carry 8 kHz anyway. So an upload (8 or 16 kHz, mono PCM) is checked and rewritten in that one
//! form (a plain 44-byte header, nothing but the samples; 16 kHz resampled), and speech from
//! the text-to-speech engine, at whatever rate it writes, is resampled too.

use std::f64::consts::PI;

/// The largest prompt accepted (contract: 10 MB).
pub const MAX_PROMPT_BYTES: usize = 10 * 1024 * 1024;

/// Rates an upload may have (contract).
pub const UPLOAD_RATES: [u32; 2] = [8000, 16000];

/// The rate every prompt is stored and served at.
pub const STORED_RATE: u32 = 8000;

/// Mono 16-bit samples at a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    pub fn duration_ms(&self) -> i64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as i64 * 1000 / i64::from(self.sample_rate)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("the body is not a WAV file: {0}")]
    NotWav(String),
    #[error("{0}")]
    Unplayable(String),
}

/// What a WAV file's `fmt ` chunk says.
struct Format {
    channels: u16,
    sample_rate: u32,
    bits: u16,
}

/// A RIFF WAV's format and its data chunk: PCM (or extensible PCM), any channel count and rate.
/// A data chunk whose size runs past the end (a WAV written to a pipe, as
/// `espeak-ng --stdout` does) is taken to the end.
fn chunks(bytes: &[u8]) -> Result<(Format, &[u8]), AudioError> {
    let bad = |why: &str| AudioError::NotWav(why.to_owned());
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("it does not start with a RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<Format> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let start = at + 8;
        let end = start.saturating_add(size).min(bytes.len());
        let body = &bytes[start..end];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(bad("its fmt chunk is too short"));
                }
                let tag = u16::from_le_bytes([body[0], body[1]]);
                // 0xFFFE: WAVE_FORMAT_EXTENSIBLE, whose sub-format's first two bytes say PCM.
                let pcm = tag == 1
                    || (tag == 0xFFFE && body.len() >= 26 && body[24] == 1 && body[25] == 0);
                if !pcm {
                    return Err(AudioError::Unplayable(format!(
                        "the WAV is not PCM (format tag {tag}); use 16-bit PCM"
                    )));
                }
                let f = Format {
                    channels: u16::from_le_bytes([body[2], body[3]]),
                    sample_rate: u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
                    bits: u16::from_le_bytes([body[14], body[15]]),
                };
                if f.channels == 0 || f.sample_rate == 0 {
                    return Err(bad("its fmt chunk says 0 channels or 0 Hz"));
                }
                if f.bits != 8 && f.bits != 16 {
                    return Err(AudioError::Unplayable(format!(
                        "the WAV has {}-bit samples; use 16-bit PCM",
                        f.bits
                    )));
                }
                format = Some(f);
            }
            b"data" => {
                let Some(f) = format else {
                    return Err(bad("its data chunk comes before its fmt chunk"));
                };
                return Ok((f, body));
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = start.saturating_add(size).saturating_add(size & 1);
    }
    Err(bad("it has no data chunk"))
}

/// The format and the samples (8-bit widened to 16), channels interleaved.
fn read_wav(bytes: &[u8]) -> Result<(Format, Vec<i16>), AudioError> {
    let (f, data) = chunks(bytes)?;
    let samples = if f.bits == 16 {
        data.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    } else {
        // 8-bit WAV is unsigned.
        data.iter().map(|&b| (i16::from(b) - 128) << 8).collect()
    };
    Ok((f, samples))
}

/// How long a PCM WAV lasts, from its header alone (a recording is stored as the PBX wrote it).
pub fn duration_ms(bytes: &[u8]) -> Result<i64, AudioError> {
    let (f, data) = chunks(bytes)?;
    let frame = u64::from(f.channels) * u64::from(f.bits / 8);
    let frames = data.len() as u64 / frame.max(1);
    Ok((frames * 1000 / u64::from(f.sample_rate)) as i64)
}

/// An uploaded prompt: mono, 8 or 16 kHz, PCM (8-bit is widened to 16), within the size limit.
pub fn check_upload(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let (f, samples) = read_wav(bytes)?;
    if f.channels != 1 {
        return Err(AudioError::Unplayable(format!(
            "the WAV has {} channels; prompts are mono",
            f.channels
        )));
    }
    if !UPLOAD_RATES.contains(&f.sample_rate) {
        return Err(AudioError::Unplayable(format!(
            "the WAV is sampled at {} Hz; prompts are 8000 or 16000 Hz",
            f.sample_rate
        )));
    }
    if samples.is_empty() {
        return Err(AudioError::Unplayable("the WAV has no samples".to_owned()));
    }
    Ok(Pcm {
        sample_rate: STORED_RATE,
        samples: resample(&samples, f.sample_rate, STORED_RATE),
    })
}

/// Speech as an engine wrote it, mixed down to mono and resampled to [`STORED_RATE`].
pub fn from_speech(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let (f, samples) = read_wav(bytes)?;
    let channels = usize::from(f.channels);
    let mono: Vec<i16> = if channels == 1 {
        samples
    } else {
        samples
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                (sum / channels as i32) as i16
            })
            .collect()
    };
    Ok(Pcm {
        sample_rate: STORED_RATE,
        samples: resample(&mono, f.sample_rate, STORED_RATE),
    })
}

/// Band-limited resampling: each output sample is the input's windowed-sinc interpolation at
/// its instant, with the cut-off at the lower of the two Nyquist frequencies (no aliasing when
/// going down, 22.05 kHz speech to 16 kHz).
pub fn resample(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    // Taps on each side of the instant, in input samples (scaled when going down).
    const HALF_TAPS: f64 = 16.0;
    let ratio = f64::from(to) / f64::from(from);
    let cutoff = ratio.min(1.0);
    let half = (HALF_TAPS / cutoff).ceil();
    let out_len = (input.len() as f64 * ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let first = (t - half).ceil().max(0.0) as usize;
        let last = ((t + half).floor() as usize).min(input.len() - 1);
        let mut acc = 0.0;
        for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
            let d = t - k as f64;
            // Blackman window over [-half, half].
            let w = 0.42 + 0.5 * (PI * d / half).cos() + 0.08 * (2.0 * PI * d / half).cos();
            acc += f64::from(x) * cutoff * sinc(cutoff * d) * w;
        }
        out.push(acc.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// The one stored form: `RIFF`, a 16-byte PCM `fmt `, the `data`.
pub fn encode_wav(pcm: &Pcm) -> Vec<u8> {
    let data_len = (pcm.samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.sample_rate.to_le_bytes());
    out.extend_from_slice(&(pcm.sample_rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &pcm.samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, ms: u32) -> Vec<i16> {
        let n = rate * ms / 1000;
        (0..n)
            .map(|i| ((2.0 * PI * hz * f64::from(i) / f64::from(rate)).sin() * 12000.0) as i16)
            .collect()
    }

    #[test]
    fn an_upload_comes_back_in_the_one_stored_form() {
        let pcm = Pcm {
            sample_rate: 8000,
            samples: tone(8000, 440.0, 250),
        };
        let wav = encode_wav(&pcm);
        assert_eq!(wav.len(), 44 + 4000);
        let back = check_upload(&wav).expect("playable");
        assert_eq!(back, pcm);
        assert_eq!(back.duration_ms(), 250);
        // Extra chunks (LIST metadata, odd-sized and padded) are dropped.
        let mut with_list = wav[..36].to_vec();
        with_list.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        with_list.extend_from_slice(&wav[36..]);
        assert_eq!(check_upload(&with_list), Ok(pcm));
    }

    #[test]
    fn what_the_pbx_cannot_play_is_refused_with_the_reason() {
        let good = encode_wav(&Pcm {
            sample_rate: 16000,
            samples: tone(16000, 300.0, 100),
        });
        // 16 kHz is taken, and stored at 8 kHz.
        let stored = check_upload(&good).expect("16 kHz upload");
        assert_eq!((stored.sample_rate, stored.samples.len()), (8000, 800));
        assert!(matches!(
            check_upload(b"ID3\x03 not a wav"),
            Err(AudioError::NotWav(_))
        ));
        assert!(matches!(
            check_upload(&good[..30]),
            Err(AudioError::NotWav(_))
        ));
        let mut rate = good.clone();
        rate[24..28].copy_from_slice(&44100u32.to_le_bytes());
        let e = check_upload(&rate).expect_err("44.1 kHz");
        assert!(e.to_string().contains("44100 Hz"), "{e}");
        let mut stereo = good.clone();
        stereo[22..24].copy_from_slice(&2u16.to_le_bytes());
        assert!(
            check_upload(&stereo)
                .expect_err("stereo")
                .to_string()
                .contains("mono")
        );
        let mut float = good.clone();
        float[20..22].copy_from_slice(&3u16.to_le_bytes());
        assert!(
            check_upload(&float)
                .expect_err("float")
                .to_string()
                .contains("PCM")
        );
        let empty = encode_wav(&Pcm {
            sample_rate: 8000,
            samples: Vec::new(),
        });
        assert!(check_upload(&empty).is_err());
        assert_eq!(duration_ms(&good), Ok(100));
        assert!(duration_ms(b"nope").is_err());
    }

    #[test]
    fn speech_is_resampled_without_changing_its_length_or_pitch() {
        let mut wav = encode_wav(&Pcm {
            sample_rate: 22050,
            samples: tone(22050, 440.0, 1000),
        });
        // As a pipe writes it: a data size past the end.
        wav[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        let pcm = from_speech(&wav).expect("speech");
        assert_eq!(pcm.sample_rate, 8000);
        assert!(
            (pcm.samples.len() as i64 - 8000).abs() <= 1,
            "{}",
            pcm.samples.len()
        );
        // Still 440 Hz: count the rising zero crossings over the second.
        let crossings = pcm
            .samples
            .windows(2)
            .filter(|w| w[0] < 0 && w[1] >= 0)
            .count();
        assert!((438..=442).contains(&crossings), "{crossings}");
        // Amplitude kept (away from the edges).
        let peak = pcm.samples[500..7500]
            .iter()
            .map(|s| s.abs())
            .max()
            .unwrap_or(0);
        assert!((11000..=13000).contains(&peak), "{peak}");
    }
}
