//! The statistics that read a sweep or a soak run (being written: the
//! knee finder has landed; the USL fit, trend tests, Little's law check
//! and capacity search follow).

pub mod knee;

#[cfg(test)]
mod test_noise;
