//! Pure rendering of the desired state into AS3 declarations (one Tenant per partition).

pub mod digest;
pub mod formats;
pub mod ownership;
pub mod render;
pub mod schema;

pub use ownership::{Ownership, TenantOwner};
pub use render::{
    render_application, render_empty_tenant, render_request, render_tenant, serialize_request, tenant_hash,
    RenderedApplication,
};
