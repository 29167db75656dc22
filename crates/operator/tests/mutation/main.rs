//! The webhook's mutation as one test binary: the pure `mutation::mutate` without a server
//! (what the injected containers run with, where they go, what is denied, the seed example,
//! what a real kubelet showed), and the real router's answers to bad request bodies.

mod admission_bodies;
mod behaviour;
mod denials;
mod placement;
mod real_kubelet;
mod seed;
mod support;
