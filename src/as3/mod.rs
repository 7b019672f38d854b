//! Pure rendering of the desired state into AS3 declarations (one Tenant per partition).

pub mod ownership;
pub mod render;

/// AS3's own rules (schema and formats, parser checks), shared with the BIG-IP simulator.
pub use as3_rules::{digest, formats, schema};

pub use ownership::{Ownership, TenantOwner};
pub use render::{
    render_application, render_empty_tenant, render_request, render_tenant, serialize_request, tenant_hash,
    RenderedApplication,
};
