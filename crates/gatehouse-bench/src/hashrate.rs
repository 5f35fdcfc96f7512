//! The machine's raw argon2id rate with the server's parameters: the ceiling of a hashing-bound flow.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use gatehouse_core::crypto::{HashParams, Passwords};

#[derive(Debug, Clone, Copy)]
pub struct HashRate {
    pub threads: usize,
    pub hashes: u64,
    pub elapsed: Duration,
    /// CPU this process got while hashing (cores); below `threads` means other processes competed.
    pub cpu_cores: f64,
    /// CPU the hypervisor took for other guests meanwhile (cores, whole machine).
    pub steal_cores: f64,
}

impl HashRate {
    pub fn per_second(&self) -> f64 {
        self.hashes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn per_thread(&self) -> f64 {
        self.per_second() / self.threads.max(1) as f64
    }

    /// Hashes per second of CPU this process actually got: the per-thread rate when every thread had a core
    /// of its own, and still one core's rate when other processes took part of the CPU.
    pub fn per_cpu_second(&self) -> f64 {
        if self.cpu_cores < 0.05 {
            return self.per_thread();
        }
        self.per_second() / self.cpu_cores
    }
}

/// Hashes on `threads` threads at once for about `duration`, as the server's hashing pool would.
pub fn measure(params: HashParams, threads: usize, duration: Duration) -> anyhow::Result<HashRate> {
    let threads = threads.max(1);
    let hasher = Passwords::new(params)?;
    let barrier = Barrier::new(threads);
    let ticks = crate::server::clock_ticks();
    let (cpu_before, (_, steal_before), wall) =
        (crate::server::cpu_ticks("self")?, crate::server::machine_ticks()?, Instant::now());
    let counts: Vec<anyhow::Result<(u64, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let hasher = &hasher;
                let barrier = &barrier;
                scope.spawn(move || {
                    let password = format!("Bench-Hash-Rate-{t}-Cobalt");
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < duration {
                        hasher.hash(&password)?;
                        n += 1;
                    }
                    Ok((n, start.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("hashing thread panicked"))))
            .collect()
    });
    let mut hashes = 0;
    let mut elapsed = Duration::ZERO;
    for c in counts {
        let (n, took) = c?;
        hashes += n;
        elapsed = elapsed.max(took);
    }
    let wall = wall.elapsed().as_secs_f64().max(1e-9);
    let cpu_cores = crate::server::cpu_ticks("self")?.saturating_sub(cpu_before) as f64 / ticks / wall;
    let steal_cores = crate::server::machine_ticks()?.1.saturating_sub(steal_before) as f64 / ticks / wall;
    Ok(HashRate { threads, hashes, elapsed, cpu_cores, steal_cores })
}
