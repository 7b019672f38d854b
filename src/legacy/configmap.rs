//! `f5type: virtual-server` ConfigMaps (schemas v0.1.0–v0.1.7) → VirtualServer/TransportServer.
