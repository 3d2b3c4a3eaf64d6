//! Access to the recorded Asterisk sessions in `shared/ami-transcripts`.

use std::path::PathBuf;

/// `AMI_TRANSCRIPTS_DIR`, else `shared/ami-transcripts` beside the repository.
pub fn transcripts_dir() -> PathBuf {
    std::env::var_os("AMI_TRANSCRIPTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ami-transcripts")
        })
}

pub struct Transcript {
    pub name: String,
    /// Every byte Asterisk sent.
    pub received: Vec<u8>,
    /// Every byte the recording client sent.
    pub sent: Vec<u8>,
    /// The `.txt` description (timeline and sequence written by the recorder).
    pub notes: String,
}

pub fn all() -> Vec<Transcript> {
    let dir = transcripts_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("transcripts at {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".ami").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 25,
        "expected the recorded sessions in {}",
        dir.display()
    );
    names.into_iter().map(|n| load(&n)).collect()
}

pub fn load(name: &str) -> Transcript {
    let dir = transcripts_dir();
    let read = |ext: &str| {
        std::fs::read(dir.join(format!("{name}.{ext}")))
            .unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
    };
    Transcript {
        name: name.to_string(),
        received: read("ami"),
        sent: read("sent"),
        notes: String::from_utf8(read("txt")).expect("txt is UTF-8"),
    }
}

impl Transcript {
    /// The recorder's own list: `Response:Success, FullyBooted, ...` (banner excluded).
    pub fn sequence(&self) -> Vec<String> {
        let mut lines = self.notes.lines();
        lines
            .find(|l| l.starts_with("Received message sequence"))
            .expect("sequence line");
        let seq = lines.next().expect("sequence");
        seq.split(',').map(|s| s.trim().to_string()).collect()
    }

    /// The timeline lines (`Newstate ChannelStateDesc=Ringing [SIP/x 123.0]`), banner first.
    pub fn timeline(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut inside = false;
        for line in self.notes.lines() {
            if line.starts_with("Received messages") {
                inside = true;
                continue;
            }
            if inside {
                let t = line.trim_start();
                if t.is_empty() {
                    break;
                }
                if let Some((ms, rest)) = t.split_once(' ')
                    && ms.chars().all(|c| c.is_ascii_digit())
                {
                    out.push(rest.to_string());
                }
            }
        }
        out
    }
}
