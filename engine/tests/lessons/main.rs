//! Every lesson of the article, run as the dashboard runs it, with the
//! signal it must show checked from the job's snapshots and report (never
//! from how long anything took). One test per lesson.

mod helpers;
mod lessons;
