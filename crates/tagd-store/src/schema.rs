//! The one Diesel schema both backends share (see `migrations/mysql` and `migrations/sqlite`).

diesel::table! {
    categories (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        description -> Text,
        is_exclusive -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    tags (id) {
        id -> Text,
        category_id -> Text,
        name -> Text,
        name_key -> Text,
        description -> Text,
        value_type -> Text,
        enum_values -> Text,
        default_validity_secs -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    customers (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        name_pinyin -> Nullable<Text>,
        gender -> Text,
        birthday -> Nullable<Date>,
        province -> Text,
        city -> Text,
        district -> Text,
        address_detail -> Text,
        company -> Text,
        source_channel -> Text,
        phones -> Text,
        emails -> Text,
        external_ids -> Text,
        attributes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    customer_phones (customer_id, phone) {
        customer_id -> Text,
        phone -> Text,
        position -> Integer,
    }
}

diesel::table! {
    customer_emails (customer_id, email) {
        customer_id -> Text,
        email -> Text,
        position -> Integer,
    }
}

diesel::table! {
    customer_external_ids (channel, external_id) {
        channel -> Text,
        external_id -> Text,
        customer_id -> Text,
    }
}

diesel::table! {
    customer_tags (customer_id, tag_id) {
        customer_id -> Text,
        tag_id -> Text,
        category_id -> Text,
        value -> Nullable<Text>,
        source -> Text,
        source_ref -> Text,
        assigned_by -> Text,
        assigned_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tag_history (id) {
        id -> Text,
        customer_id -> Text,
        tag_id -> Text,
        tag_name -> Text,
        category_name -> Text,
        action -> Text,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
        source -> Text,
        source_ref -> Text,
        actor -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    categories,
    tags,
    customers,
    customer_phones,
    customer_emails,
    customer_external_ids,
    customer_tags,
    tag_history,
);

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        state -> Text,
        created_by -> Text,
        subject -> Text,
        dry_run -> Bool,
        params -> Text,
        progress -> Text,
        error -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    job_rejected_rows (job_id, seq) {
        job_id -> Text,
        seq -> BigInt,
        source_row -> BigInt,
        field -> Text,
        reason -> Text,
        raw_value -> Text,
    }
}

diesel::table! {
    purchases (id) {
        id -> Text,
        customer_id -> Text,
        channel -> Text,
        order_id -> Text,
        ordered_at -> Timestamp,
        currency -> Text,
        total_cents -> BigInt,
        status -> Text,
        source_ref -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    purchase_items (purchase_id, position) {
        purchase_id -> Text,
        position -> Integer,
        customer_id -> Text,
        product_id -> Text,
        name -> Text,
        category -> Text,
        quantity -> BigInt,
        unit_price_cents -> BigInt,
        ordered_at -> Timestamp,
    }
}

diesel::table! {
    interactions (id) {
        id -> Text,
        customer_id -> Text,
        occurred_at -> Timestamp,
        channel -> Text,
        direction -> Text,
        staff -> Text,
        summary -> Text,
        outcome -> Text,
        next_follow_up -> Nullable<Date>,
        content_key -> Text,
        source_ref -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    import_changes (job_id, customer_id) {
        job_id -> Text,
        customer_id -> Text,
        action -> Text,
        before_fields -> Text,
    }
}

diesel::table! {
    merges (id) {
        id -> Text,
        survivor_id -> Text,
        merged_ids -> Text,
        actor -> Text,
        job_id -> Text,
        reason -> Text,
        snapshot -> Text,
        created_at -> Timestamp,
        undone_at -> Nullable<Timestamp>,
        undone_by -> Text,
    }
}

diesel::table! {
    merged_customers (customer_id) {
        customer_id -> Text,
        merge_id -> Text,
        survivor_id -> Text,
    }
}

diesel::table! {
    dedupe_candidates (id) {
        id -> Text,
        customer_a -> Text,
        customer_b -> Text,
        score -> Double,
        explanation -> Text,
        state -> Text,
        job_id -> Text,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Text,
    }
}

diesel::table! {
    customer_field_history (id) {
        id -> Text,
        customer_id -> Text,
        field -> Text,
        old_value -> Text,
        new_value -> Text,
        source -> Text,
        source_ref -> Text,
        actor -> Text,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    cleanse_field_counts (job_id, field) {
        job_id -> Text,
        field -> Text,
        changed -> BigInt,
        duplicates_removed -> BigInt,
        unfixable -> BigInt,
    }
}

diesel::table! {
    cleanse_unfixable (job_id, seq) {
        job_id -> Text,
        seq -> BigInt,
        customer_id -> Text,
        field -> Text,
        value -> Text,
        reason -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(dedupe_candidates, customers);
// A batch of merges moves rows to each merged id's survivor with a subquery on merged_customers.
diesel::allow_tables_to_appear_in_same_query!(merged_customers, tag_history);
diesel::allow_tables_to_appear_in_same_query!(merged_customers, customer_field_history);
diesel::allow_tables_to_appear_in_same_query!(merged_customers, purchases);
diesel::allow_tables_to_appear_in_same_query!(merged_customers, purchase_items);
diesel::allow_tables_to_appear_in_same_query!(merged_customers, interactions);
diesel::table! {
    segments (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        description -> Text,
        kind -> Text,
        condition_text -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    segment_members (segment_id, customer_id) {
        segment_id -> Text,
        customer_id -> Text,
    }
}

diesel::table! {
    segment_sizes (segment_id, measured_at) {
        segment_id -> Text,
        measured_at -> Timestamp,
        member_count -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(segment_members, customers);
diesel::allow_tables_to_appear_in_same_query!(segment_members, segments);

diesel::table! {
    tag_rules (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        description -> Text,
        tag_id -> Text,
        value -> Nullable<Text>,
        condition_text -> Text,
        interval_secs -> Nullable<BigInt>,
        overrides_manual -> Bool,
        enabled -> Bool,
        template -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        next_run_at -> Nullable<Timestamp>,
        running_run_id -> Nullable<Text>,
        running_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rule_runs (id) {
        id -> Text,
        rule_id -> Text,
        rule_name -> Text,
        run_trigger -> Text,
        actor -> Text,
        state -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        evaluated -> BigInt,
        matched -> BigInt,
        gained -> BigInt,
        changed -> BigInt,
        lost -> BigInt,
        kept -> BigInt,
        held_back -> BigInt,
        error -> Text,
    }
}
