//! Ingresses of class `f5` with `virtual-server.f5.com/*` annotations → VirtualServer.
