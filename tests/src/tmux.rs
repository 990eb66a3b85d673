//! A real terminal for the step tests: a detached tmux session running one command, keys
//! sent to it, its screen read back; the session is killed when dropped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tmux session running one command.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// Starts `cmd` in a new detached session called `fsc-{tag}-{pid}-{columns}`,
    /// `columns` wide and 60 rows high (an old session of that name is killed first).
    pub fn start(tag: &str, cmd: &str, columns: u16) -> Tmux {
        let session = format!("fsc-{tag}-{}-{columns}", std::process::id());
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &session])
            .stderr(Stdio::null())
            .status();
        let columns = columns.to_string();
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                &columns,
                "-y",
                "60",
                "-s",
                &session,
                cmd,
            ])
            .status()
            .expect("tmux new-session")
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { session }
    }

    /// Sends `keys` (tmux key names or text).
    pub fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux send-keys")
            .success();
        assert!(ok, "tmux send-keys failed");
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (at most 60 s) until the screen contains `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the screen never showed {needle:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses `key` until the screen shows `needle` (at most `max` presses, each
    /// waiting at most 20 s for the screen to change).
    pub fn press_until(&self, key: &str, needle: &str, max: usize) -> String {
        for _ in 0..max {
            let before = self.screen();
            if before.contains(needle) {
                return before;
            }
            self.keys(&[key]);
            let start = Instant::now();
            while self.screen() == before && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.wait_for(needle)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}
