//! Samples what a telemetry report carries: CPU over the last interval, memory, and the disk
//! holding the data directory.

use std::path::{Path, PathBuf};

use sysinfo::{Disks, System};

/// Keeps the state CPU sampling needs between reports.
pub struct Sampler {
    system: System,
    data: PathBuf,
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CPU use in thousandths of all cores since the last sample.
    pub cpu_milli: u16,
    /// Memory used, bytes.
    pub mem_used_bytes: u64,
    /// Memory total, bytes.
    pub mem_total_bytes: u64,
    /// Disk used on the data volume, bytes.
    pub disk_used_bytes: u64,
    /// Disk free on the data volume, bytes.
    pub disk_free_bytes: u64,
}

impl Sampler {
    /// A sampler for the volume holding `data`.
    pub fn new(data: &Path) -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Sampler {
            system,
            data: data.canonicalize().unwrap_or_else(|_| data.to_path_buf()),
        }
    }

    /// Samples now.
    pub fn sample(&mut self) -> Sample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let cpu = self.system.global_cpu_usage().clamp(0.0, 100.0);
        let disks = Disks::new_with_refreshed_list();
        let disk = disks
            .list()
            .iter()
            .filter(|d| self.data.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        let (total, free) = disk
            .map(|d| (d.total_space(), d.available_space()))
            .unwrap_or((0, 0));
        Sample {
            cpu_milli: (cpu * 10.0) as u16,
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            disk_used_bytes: total.saturating_sub(free),
            disk_free_bytes: free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path());
        let x = s.sample();
        assert!(x.mem_total_bytes > 0 && x.mem_used_bytes <= x.mem_total_bytes);
        assert!(x.disk_free_bytes > 0, "{x:?}");
        assert!(x.cpu_milli <= 1000);
    }
}
