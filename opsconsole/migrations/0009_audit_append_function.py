"""One statement per audit append on PostgreSQL (opsconsole.audit._append_one).

An append used to be three statements: lock a free stream's head, insert the
row (hashed in Python with the head's hash), move the head. The function
does the three in one round trip: Python sends the row and its canonical
hash text cut around the three values only the locked head knows (previous
hash, position, stream), and the function hashes the joined text with
PostgreSQL's sha256(), byte for byte what opsconsole.audit.compute_hash
hashes (tests/opsconsole/test_audit.py compares them). The head is chosen
as before: the preferred stream if free, else the next free one (SKIP
LOCKED); all busy, wait for the preferred one; a missing head returns no
row, and the caller makes the heads and calls again.
"""

from django.db import migrations

UP = """
CREATE OR REPLACE FUNCTION opsconsole_audit_append(
    p_count integer, p_preferred integer, p_created_at timestamptz,
    p_actor_id bigint, p_actor_label text, p_action text,
    p_target_type text, p_target_id text, p_target_repr text,
    p_before jsonb, p_after jsonb, p_request_id text,
    p_hash_head text, p_hash_mid text, p_hash_tail text
) RETURNS TABLE (seq bigint, stream integer, "position" bigint, prev_hash text, hash text) AS $$
DECLARE
    head opsconsole_audithead%ROWTYPE;
    new_position bigint;
    new_hash text;
    new_seq bigint;
BEGIN
    SELECT * INTO head FROM opsconsole_audithead h WHERE h.id <= p_count
        ORDER BY (h.id - p_preferred + p_count) % p_count LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        IF (SELECT count(*) FROM opsconsole_audithead h WHERE h.id <= p_count) < p_count THEN
            RETURN;  -- heads missing: opsconsole.audit.ensure_heads makes them, then calls again
        END IF;
        SELECT * INTO head FROM opsconsole_audithead h WHERE h.id = p_preferred FOR UPDATE;
    END IF;
    new_position := head.position + 1;
    new_hash := encode(sha256(convert_to(
        p_hash_head || head.hash || p_hash_mid || new_position::text
        || CASE WHEN head.id = 1 THEN '' ELSE ',"stream":' || head.id::text END
        || p_hash_tail, 'UTF8')), 'hex');
    INSERT INTO opsconsole_auditentry (stream, position, created_at, actor_id, actor_label, action,
                                       target_type, target_id, target_repr, before, after,
                                       request_id, prev_hash, hash)
    VALUES (head.id, new_position, p_created_at, p_actor_id, p_actor_label, p_action,
            p_target_type, p_target_id, p_target_repr, p_before, p_after,
            p_request_id, head.hash, new_hash)
    RETURNING opsconsole_auditentry.seq INTO new_seq;
    UPDATE opsconsole_audithead h SET position = new_position, hash = new_hash, updated_at = p_created_at
        WHERE h.id = head.id;
    RETURN QUERY SELECT new_seq, head.id::integer, new_position, head.hash::text, new_hash;
END;
$$ LANGUAGE plpgsql;
"""

DOWN = """
DROP FUNCTION IF EXISTS opsconsole_audit_append(
    integer, integer, timestamptz, bigint, text, text, text, text, text, jsonb, jsonb, text, text, text, text);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("opsconsole", "0008_audit_streams")]

    operations = [migrations.RunPython(create, drop)]
