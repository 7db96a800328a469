//! Measures the in-process store's bytes per record and per log entry with worst-case inputs
//! (255 four-byte characters in username, user agent and path), by counting allocations, and
//! checks that what the store accounts (`MemoryStore::held_bytes`) is within 10% of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use lockout::policy::Combination;
use lockout::store::memory::MemoryStore;
use lockout::{Attempt, Engine, Field, Policy};

struct Counting;
static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::test]
async fn bytes_per_entry() {
    const N: usize = 4000;
    let long = "\u{1D11E}".repeat(255);
    for (name, combinations, log) in [
        ("log entry only", vec![vec![Field::Ip]], true),
        ("ip record + log", vec![vec![Field::Ip]], true),
        (
            "ip,username,ua records + log",
            vec![
                vec![Field::Ip],
                vec![Field::Username],
                vec![Field::Ip, Field::Username],
                vec![Field::UserAgent],
            ],
            true,
        ),
        (
            "ip,username,ua records, no log",
            vec![
                vec![Field::Ip],
                vec![Field::Username],
                vec![Field::Ip, Field::Username],
                vec![Field::UserAgent],
            ],
            false,
        ),
    ] {
        let mut policy = Policy {
            combinations: combinations
                .into_iter()
                .map(|fields| Combination::new(fields).unwrap())
                .collect(),
            ..Policy::default()
        };
        if !log {
            policy.access_log = None;
        }
        let engine = Engine::new(
            MemoryStore::new(10_000_000).with_max_bytes(usize::MAX),
            policy,
        );
        let same_ip = name == "log entry only";
        let before = HELD.load(Ordering::Relaxed);
        for n in 0..N {
            let ip = if same_ip {
                "10.0.0.1".to_string()
            } else {
                format!("10.{}.{}.{}", n / 65536, n / 256 % 256, n % 256)
            };
            let username = format!("{n:08}{}", &long[..long.len() - 32]);
            let attempt = Attempt::parse(
                &ip,
                Some(&username),
                Some(&format!("{n}{long}")),
                Some(&format!("{n}{long}")),
            )
            .unwrap();
            engine.fail(&attempt).await.unwrap();
        }
        let allocated = (HELD.load(Ordering::Relaxed) - before) as usize / N;
        let accounted = engine.store().held_bytes() / N;
        println!("{name}: {allocated} bytes per failure allocated, {accounted} accounted");
        assert!(
            accounted * 10 >= allocated * 9 && accounted * 10 <= allocated * 11,
            "{name}: accounted within 10% of what is allocated"
        );
        drop(engine);
    }
}
