//! The S3 to Filecoin bridge: CAR packing, piece CIDs, deal tracking and retrieval checks for
//! sealed objects already archived in S3.
//!
//! Not built yet: no issue has asked for it so far; the PoC archives to S3 only.
