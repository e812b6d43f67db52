//! The journal against real files: appends, shipping order, the size limit, restarts, and
//! what a crash or damage leaves behind.

use std::fs;
use std::path::Path;

use prometheus::Registry;
use time::macros::datetime;

use super::*;
use crate::store::ClickRow;

fn open(dir: &Path, max_bytes: u64) -> (Journal, Recovery, JournalMetrics) {
    let metrics = JournalMetrics::new(&Registry::new());
    let (journal, recovery) = Journal::open(
        JournalConfig {
            dir: dir.to_owned(),
            max_bytes,
        },
        Clock::system(),
        metrics.clone(),
    )
    .unwrap();
    (journal, recovery, metrics)
}

fn conversion(order: &str) -> Entry {
    let brand = crate::domain::BrandId::parse("brd_00000000000000aa").unwrap();
    let id = ConversionId::derive(&brand, order);
    Entry::Conversion(ConversionRow {
        conversion_id: id.to_string(),
        dedup_key: id.dedup_key(),
        brand_id: brand.to_string(),
        order_id: order.to_owned(),
        version: 1,
        created_at: datetime!(2026-03-20 14:30:00 UTC),
        updated_at: datetime!(2026-03-20 14:30:00 UTC),
        source: "api".into(),
        campaign_id: "camp_00000000000000aa".into(),
        affiliate_id: "usr_00000000000000aa".into(),
        link_id: "lnk_00000000000000aa".into(),
        click_id: "clk_x".into(),
        attribution_method: "click_id".into(),
        click_time: Some(datetime!(2026-03-20 14:00:00 UTC)),
        seconds_from_click: Some(1_800),
        event_type: "sale".into(),
        amount: 999_900,
        currency: "USD".into(),
        commission_amount: 100_000,
        commission_currency: "USD".into(),
        commission_rule: "10%".into(),
        status: "pending".into(),
        status_reason: String::new(),
        note: String::new(),
        customer_email_sha256: String::new(),
        metadata_key: vec!["sku".into()],
        metadata_value: vec![format!("marker-{order}")],
    })
}

fn click(id: &str) -> Entry {
    Entry::Click(ClickRow {
        click_id: id.into(),
        clicked_at: datetime!(2026-03-20 14:00:00 UTC),
        link_id: "lnk_00000000000000aa".into(),
        campaign_id: "camp_00000000000000aa".into(),
        affiliate_id: "usr_00000000000000aa".into(),
        brand_id: "brd_00000000000000aa".into(),
        ip: "203.0.113.7".into(),
        forwarded_for: String::new(),
        user_agent: "Mozilla/5.0".into(),
        referer: String::new(),
        sub1: String::new(),
        sub2: String::new(),
        sub3: String::new(),
        sub4: String::new(),
        sub5: String::new(),
    })
}

fn id_of(entry: &Entry) -> ConversionId {
    match entry {
        Entry::Conversion(row) => ConversionId::parse(&row.conversion_id).unwrap(),
        Entry::Click(_) | Entry::StatusChange(_) => panic!("not a conversion"),
    }
}

/// What the shipper would take next: the oldest range, read whole.
struct Batch {
    seqs: std::ops::RangeInclusive<u64>,
    records: Vec<(u64, Entry)>,
}

fn oldest(journal: &Journal, max_records: usize) -> Option<Batch> {
    let seqs = journal.oldest_unshipped(max_records)?;
    let records = journal.read(seqs.clone(), usize::MAX).unwrap().records;
    Some(Batch { seqs, records })
}

fn orders(batch: &Batch) -> Vec<String> {
    batch
        .records
        .iter()
        .map(|(_, entry)| match entry {
            Entry::Conversion(row) => row.order_id.clone(),
            Entry::Click(row) => row.click_id.clone(),
            Entry::StatusChange(row) => row.conversion_id.clone(),
        })
        .collect()
}

#[test]
fn records_ship_oldest_first_and_leave_once_released() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, recovery, metrics) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.records, 0);

    let first = [conversion("a"), conversion("b"), conversion("c")];
    assert_eq!(journal.append(&first).unwrap(), 1..=3);
    assert_eq!(journal.append(&[click("k1"), click("k2")]).unwrap(), 4..=5);
    assert_eq!(journal.pending_records(), 5);
    assert_eq!(metrics.append_seconds.get_sample_count(), 2);
    let row = journal.conversion(&id_of(&first[1])).unwrap().unwrap();
    assert_eq!(row.order_id, "b");

    // Whole appends: a limit of 4 takes the first append only.
    let batch = oldest(&journal, 4).unwrap();
    assert_eq!(batch.seqs, 1..=3);
    assert_eq!(orders(&batch), ["a", "b", "c"]);
    journal.release_through(*batch.seqs.end()).unwrap();
    assert_eq!(journal.pending_records(), 2);
    assert_eq!(journal.conversion(&id_of(&first[1])).unwrap(), None);

    let batch = oldest(&journal, 100).unwrap();
    assert_eq!(orders(&batch), ["k1", "k2"]);
    journal.release_through(*batch.seqs.end()).unwrap();
    assert!(oldest(&journal, 100).is_none());
    journal.sample_metrics();
    assert_eq!(metrics.pending_records.get(), 0);
    assert_eq!(metrics.lag_seconds.get(), 0.0);
}

#[test]
fn a_newer_version_stays_indexed_when_an_older_one_ships() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = open(dir.path(), 1 << 30);
    let first = conversion("v");
    journal.append(std::slice::from_ref(&first)).unwrap();
    let older = oldest(&journal, 100).unwrap();
    let Entry::Conversion(mut changed) = first.clone() else {
        unreachable!()
    };
    changed.version = 2;
    changed.status = "approved".into();
    journal.append(&[Entry::Conversion(changed)]).unwrap();

    journal.release_through(*older.seqs.end()).unwrap();
    let row = journal.conversion(&id_of(&first)).unwrap().unwrap();
    assert_eq!((row.version, row.status.as_str()), (2, "approved"));
}

#[test]
fn a_full_journal_refuses_and_takes_appends_again_once_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let one = conversion("x")
        .encode(time::OffsetDateTime::now_utc())
        .len() as u64;
    let (journal, _, metrics) = open(dir.path(), 2 * one + one / 2);
    journal
        .append(&[conversion("x1"), conversion("x2")])
        .unwrap();
    let refused = journal.append(&[conversion("x3")]);
    assert!(
        matches!(refused, Err(JournalError::Full { .. })),
        "{refused:?}"
    );
    assert_eq!(metrics.refusals_total.with_label_values(&["full"]).get(), 1);
    assert_eq!(
        journal.pending_records(),
        2,
        "nothing of the refused append is kept"
    );

    let batch = oldest(&journal, 100).unwrap();
    journal.release_through(*batch.seqs.end()).unwrap();
    journal.append(&[conversion("x3")]).unwrap();
}

#[test]
fn a_restart_finds_every_unshipped_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _, _) = open(dir.path(), 1 << 30);
        journal.append(&[conversion("r1"), click("k")]).unwrap();
        journal.append(&[conversion("r2")]).unwrap();
        let batch = oldest(&journal, 2).unwrap();
        journal.release_through(*batch.seqs.end()).unwrap();
    }
    let (journal, recovery, _) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.records, 1);
    assert_eq!(
        recovery.discarded_frames, 0,
        "a clean stop leaves whole logs"
    );
    assert_eq!(recovery.torn_tail_bytes, None);
    assert_eq!(
        journal.unshipped().dedup_keys(),
        vec![id_of(&conversion("r2")).dedup_key()]
    );
    assert!(
        journal
            .conversion(&id_of(&conversion("r2")))
            .unwrap()
            .is_some()
    );
    // New records continue the sequence.
    assert_eq!(journal.append(&[conversion("r3")]).unwrap(), 4..=4);
    assert_eq!(orders(&oldest(&journal, 100).unwrap()), ["r2", "r3"]);
}

/// Copies the journal's files as a kill -9 would leave them: the records still in the
/// segments' write-ahead logs.
fn crash_image(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The one segment file of a journal, and its write-ahead log.
fn segment(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "sqlite"))
        .expect("a segment");
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    (db, wal.into())
}

#[test]
fn a_kill_image_is_recovered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let (journal, _, _) = open(dir.path(), 1 << 30);
    for i in 0..50 {
        journal.append(&[conversion(&format!("k{i}"))]).unwrap();
    }
    crash_image(dir.path(), image.path());
    drop(journal);

    let (_, recovery, _) = open(image.path(), 1 << 30);
    assert_eq!(recovery.records, 50);
    assert_eq!(recovery.discarded_frames, 0, "{recovery:?}");
    assert_eq!(recovery.torn_tail_bytes, None);
}

#[test]
fn an_append_cut_short_by_a_crash_is_dropped_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let (journal, _, _) = open(dir.path(), 1 << 30);
    for i in 0..5 {
        journal.append(&[conversion(&format!("t{i}"))]).unwrap();
    }
    crash_image(dir.path(), image.path());
    drop(journal);
    let (_, wal) = segment(image.path());
    let length = fs::metadata(&wal).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(length - 100)
        .unwrap();

    let (journal, recovery, _) = open(image.path(), 1 << 30);
    assert_eq!(recovery.torn_tail_bytes.map(|b| b > 0), Some(true));
    assert_eq!(recovery.records, 4, "the four complete appends are kept");
    assert_eq!(
        orders(&oldest(&journal, 100).unwrap()),
        ["t0", "t1", "t2", "t3"]
    );
}

#[test]
fn a_damaged_record_is_dropped_and_counted_and_the_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _, _) = open(dir.path(), 1 << 30);
        for order in ["d1", "d2", "d3"] {
            journal.append(&[conversion(order)]).unwrap();
        }
    }
    // A restart takes the log into the segment's database file; change a byte of d2 there.
    drop(open(dir.path(), 1 << 30));
    let (db, _) = segment(dir.path());
    let mut bytes = fs::read(&db).unwrap();
    let marker = b"marker-d2";
    let at = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the record is in the file");
    bytes[at] ^= 0x20;
    fs::write(&db, bytes).unwrap();

    let (journal, recovery, metrics) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.dropped, vec![2]);
    assert_eq!(recovery.records, 2);
    assert_eq!(metrics.corrupt_records_total.get(), 1);
    assert_eq!(orders(&oldest(&journal, 100).unwrap()), ["d1", "d3"]);
}

#[test]
fn a_damaged_log_frame_is_reported_and_the_records_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _, _) = open(dir.path(), 1 << 30);
        for order in ["w1", "w2", "w3"] {
            journal.append(&[conversion(order)]).unwrap();
        }
    }
    let (_, wal) = segment(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    let marker = b"marker-w2";
    let at = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the record is in the log");
    bytes[at] ^= 0x20;
    fs::write(&wal, bytes).unwrap();

    let (journal, recovery, _) = open(dir.path(), 1 << 30);
    assert!(recovery.discarded_frames > 0, "{recovery:?}");
    let kept = orders(&oldest(&journal, 100).unwrap());
    assert_eq!(kept, ["w1"], "SQLite stops at the damaged frame");
}

#[test]
fn a_segment_sqlite_cannot_read_is_set_aside_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("segment-00000000000000000001.sqlite"),
        vec![0xA5; 16 * 1024],
    )
    .unwrap();
    let (journal, recovery, _) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.records, 0);
    journal.append(&[conversion("after")]).unwrap();
    let aside = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().contains("damaged"))
        .count();
    assert_eq!(aside, 1, "the damaged file is kept for inspection");
}

#[test]
fn shipped_segments_are_removed_and_sequence_numbers_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _, _) = open(dir.path(), 1 << 30);
        journal
            .append(&[conversion("s1"), conversion("s2")])
            .unwrap();
        let batch = oldest(&journal, 100).unwrap();
        journal.release_through(*batch.seqs.end()).unwrap();
    }
    // Everything shipped: the next start finds nothing to ship and removes the segment...
    let (journal, recovery, _) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.records, 0);
    let segments = || {
        fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".sqlite")
            })
            .count()
    };
    assert_eq!(segments(), 0);
    // ...and numbers the next records after what was shipped, never over it.
    assert_eq!(journal.append(&[conversion("s3")]).unwrap(), 3..=3);
    drop(journal);
    let (journal, recovery, _) = open(dir.path(), 1 << 30);
    assert_eq!(recovery.records, 1);
    assert_eq!(
        recovery.discarded_frames, 0,
        "a clean stop leaves whole logs"
    );
    assert_eq!(recovery.torn_tail_bytes, None);
    assert_eq!(orders(&oldest(&journal, 100).unwrap()), ["s3"]);
}

#[test]
fn a_directory_that_cannot_be_made_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let result = Journal::open(
        JournalConfig {
            dir: file.join("journal"),
            max_bytes: 1 << 20,
        },
        Clock::system(),
        JournalMetrics::new(&Registry::new()),
    );
    assert!(matches!(result, Err(JournalError::CannotOpen { .. })));
}

#[test]
fn a_range_reads_in_chunks_that_resume_where_the_last_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = open(dir.path(), 1 << 30);
    for i in 0..10 {
        journal.append(&[conversion(&format!("c{i}"))]).unwrap();
    }
    let seqs = journal.oldest_unshipped(100).unwrap();
    let mut read = Vec::new();
    let mut from = *seqs.start();
    loop {
        let chunk = journal.read(from..=*seqs.end(), 3).unwrap();
        let Some(last) = chunk.read_through else {
            break;
        };
        assert!(chunk.records.len() <= 3);
        read.extend(chunk.records.into_iter().map(|(seq, _)| seq));
        from = last + 1;
    }
    assert_eq!(read, seqs.collect::<Vec<_>>());
}
