//! The webhook's mutation as one test binary: the pure `mutation::mutate` without a server
//! (what the injected containers run with, where they go, what is denied, the seed example,
//! what a real kubelet showed), and the real router's answers to bad request bodies.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

mod admission_bodies;
mod behaviour;
mod denials;
mod placement;
mod real_kubelet;
mod seed;
mod support;
