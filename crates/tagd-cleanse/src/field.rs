//! Stable names of customer fields for reports, matching the update-mask paths.

use tagd_core::customers::CustomerField;

/// The field's update-mask path, e.g. `address.province` (the inverse of
/// [`CustomerField::from_path`] for single fields).
pub fn field_name(field: CustomerField) -> &'static str {
    // The path is tagd-core's, so reports and field history name fields alike.
    field.path()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_update_mask_paths() {
        use CustomerField as F;
        for field in [
            F::Name,
            F::Gender,
            F::Birthday,
            F::Phones,
            F::Emails,
            F::Province,
            F::City,
            F::District,
            F::AddressDetail,
            F::Company,
            F::SourceChannel,
            F::ExternalIds,
            F::Attributes,
        ] {
            assert_eq!(
                CustomerField::from_path(field_name(field)),
                Some(&[field][..])
            );
        }
    }
}
