//! The tuning lab on real jobs: sweeps, a capacity search and soaks of
//! the article's templates. The runs take the machine's cores, so the
//! tests here take turns ([`helpers::exclusive`]).

mod auto;
mod helpers;
mod soaks;
mod sweeps;
