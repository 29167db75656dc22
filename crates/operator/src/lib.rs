//! The operator: reconciles `PodFilesystemSync` resources and serves the Pod mutating
//! admission webhook that injects the agent.
