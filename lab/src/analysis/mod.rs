//! The statistics that read a sweep or a soak run.

pub mod knee;
pub mod usl;

#[cfg(test)]
mod test_noise;
