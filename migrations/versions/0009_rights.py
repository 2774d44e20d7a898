"""rights — notices, counter-notices, strikes, escrow cases, stay-down fingerprints (issue 11)

- rights_notices (a partial index on the deadline of undecided notices: the decision queue and
  `ninety notices overdue` read only those), their works, one case per affected track (at most one open case
  per track), the audit log, counter-notices, strikes, appeals, suspensions and flagged claimants;
- rights_audio_fingerprints (Chromaprint by SHA-256) and rights_staydown, each with a GIN index over a
  bottom-k sample of the fingerprint's codes;
- artists.suspended_at (uploads and releases refused while set);
- a partial index on the takedown case of escrow settlement entries (ledger_entries.metadata->>'case_id').

Revision ID: 0009_rights
Revises: 0008_sales
"""

from alembic import op

revision = "0009_rights"
down_revision = "0008_sales"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE rights_audio_fingerprints (
    sha256 VARCHAR(64) NOT NULL,
    duration_ms INTEGER NOT NULL,
    codes INTEGER[] NOT NULL,
    sample INTEGER[] NOT NULL,
    CONSTRAINT pk_rights_audio_fingerprints PRIMARY KEY (sha256)
);
CREATE INDEX ix_rights_audio_fingerprints_sample ON rights_audio_fingerprints USING gin (sample);
CREATE TABLE rights_claimant_flags (
    id SERIAL NOT NULL,
    user_id INTEGER NOT NULL,
    raised_at TIMESTAMP WITH TIME ZONE NOT NULL,
    rejected_count INTEGER NOT NULL,
    notice_ids INTEGER[] NOT NULL,
    cleared_at TIMESTAMP WITH TIME ZONE,
    cleared_by_user_id INTEGER,
    reason TEXT NOT NULL,
    CONSTRAINT pk_rights_claimant_flags PRIMARY KEY (id),
    CONSTRAINT fk_rights_claimant_flags_user_id_users FOREIGN KEY(user_id) REFERENCES users (id),
    CONSTRAINT fk_rights_claimant_flags_cleared_by_user_id_users FOREIGN KEY(cleared_by_user_id) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_rights_claimant_flags_open ON rights_claimant_flags (user_id) WHERE cleared_at IS NULL;
CREATE TABLE rights_notices (
    id SERIAL NOT NULL,
    claimant_user_id INTEGER NOT NULL,
    claimant_name VARCHAR(200) NOT NULL,
    claimant_email VARCHAR(320) NOT NULL,
    claimant_address TEXT NOT NULL,
    claimant_phone VARCHAR(60) NOT NULL,
    acting_for VARCHAR(200) NOT NULL,
    statement_good_faith BOOLEAN NOT NULL,
    statement_accurate BOOLEAN NOT NULL,
    statement_authorized BOOLEAN NOT NULL,
    signature VARCHAR(200) NOT NULL,
    source VARCHAR(8) NOT NULL,
    idempotency_key VARCHAR(200),
    content_hash VARCHAR(64) NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL,
    deadline_at TIMESTAMP WITH TIME ZONE NOT NULL,
    decided_at TIMESTAMP WITH TIME ZONE,
    decided_by_user_id INTEGER,
    status VARCHAR(10) NOT NULL,
    decision_reason TEXT NOT NULL,
    CONSTRAINT pk_rights_notices PRIMARY KEY (id),
    CONSTRAINT ck_rights_notices_status CHECK (status IN ('received', 'actioned', 'rejected', 'withdrawn')),
    CONSTRAINT ck_rights_notices_source CHECK (source IN ('portal', 'api', 'csv')),
    CONSTRAINT uq_rights_notices_idempotency UNIQUE (claimant_user_id, idempotency_key),
    CONSTRAINT fk_rights_notices_claimant_user_id_users FOREIGN KEY(claimant_user_id) REFERENCES users (id),
    CONSTRAINT fk_rights_notices_decided_by_user_id_users FOREIGN KEY(decided_by_user_id) REFERENCES users (id)
);
CREATE INDEX ix_rights_notices_claimant ON rights_notices (claimant_user_id, id);
CREATE INDEX ix_rights_notices_received ON rights_notices (received_at);
CREATE INDEX ix_rights_notices_undecided ON rights_notices (deadline_at) WHERE decided_at IS NULL;
CREATE TABLE rights_suspensions (
    id SERIAL NOT NULL,
    artist_id INTEGER NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    reason TEXT NOT NULL,
    strike_ids INTEGER[] NOT NULL,
    reviewed_at TIMESTAMP WITH TIME ZONE,
    reviewed_by_user_id INTEGER,
    lifted BOOLEAN,
    review_reason TEXT NOT NULL,
    CONSTRAINT pk_rights_suspensions PRIMARY KEY (id),
    CONSTRAINT fk_rights_suspensions_artist_id_artists FOREIGN KEY(artist_id) REFERENCES artists (id),
    CONSTRAINT fk_rights_suspensions_reviewed_by_user_id_users FOREIGN KEY(reviewed_by_user_id) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_rights_suspensions_open ON rights_suspensions (artist_id) WHERE reviewed_at IS NULL;
CREATE TABLE rights_notice_works (
    id SERIAL NOT NULL,
    notice_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    title VARCHAR(300) NOT NULL,
    description TEXT NOT NULL,
    locations JSONB NOT NULL,
    reference_sha256 VARCHAR(64),
    CONSTRAINT pk_rights_notice_works PRIMARY KEY (id),
    CONSTRAINT uq_rights_notice_works_position UNIQUE (notice_id, position),
    CONSTRAINT fk_rights_notice_works_notice_id_rights_notices FOREIGN KEY(notice_id) REFERENCES rights_notices (id) ON DELETE CASCADE
);
CREATE TABLE rights_cases (
    id SERIAL NOT NULL,
    notice_id INTEGER NOT NULL,
    work_id INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    release_id INTEGER NOT NULL,
    artist_id INTEGER NOT NULL,
    via VARCHAR(12) NOT NULL,
    whole_release BOOLEAN NOT NULL,
    state VARCHAR(10) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    actioned_at TIMESTAMP WITH TIME ZONE,
    counter_deadline_at TIMESTAMP WITH TIME ZONE,
    countered_at TIMESTAMP WITH TIME ZONE,
    restore_at TIMESTAMP WITH TIME ZONE,
    resolved_at TIMESTAMP WITH TIME ZONE,
    outcome_reason VARCHAR(16),
    prior_track_status VARCHAR(12),
    prior_release_status VARCHAR(12),
    claimant_payee_id INTEGER,
    CONSTRAINT pk_rights_cases PRIMARY KEY (id),
    CONSTRAINT ck_rights_cases_state CHECK (state IN ('pending', 'disabled', 'countered', 'upheld', 'restored', 'withdrawn', 'rejected')),
    CONSTRAINT ck_rights_cases_via CHECK (via IN ('named', 'same_audio')),
    CONSTRAINT ck_rights_cases_outcome CHECK (outcome_reason IS NULL OR outcome_reason IN ('accepted', 'not_countered', 'court_action', 'restored', 'withdrawn', 'rejected')),
    CONSTRAINT fk_rights_cases_notice_id_rights_notices FOREIGN KEY(notice_id) REFERENCES rights_notices (id),
    CONSTRAINT fk_rights_cases_work_id_rights_notice_works FOREIGN KEY(work_id) REFERENCES rights_notice_works (id),
    CONSTRAINT fk_rights_cases_track_id_tracks FOREIGN KEY(track_id) REFERENCES tracks (id),
    CONSTRAINT fk_rights_cases_release_id_releases FOREIGN KEY(release_id) REFERENCES releases (id),
    CONSTRAINT fk_rights_cases_artist_id_artists FOREIGN KEY(artist_id) REFERENCES artists (id),
    CONSTRAINT fk_rights_cases_claimant_payee_id_payees FOREIGN KEY(claimant_payee_id) REFERENCES payees (id)
);
CREATE INDEX ix_rights_cases_artist ON rights_cases (artist_id, id);
CREATE INDEX ix_rights_cases_counter_deadline ON rights_cases (counter_deadline_at) WHERE state = 'disabled';
CREATE INDEX ix_rights_cases_notice ON rights_cases (notice_id);
CREATE INDEX ix_rights_cases_restore ON rights_cases (restore_at) WHERE state = 'countered';
CREATE INDEX ix_rights_cases_track_id ON rights_cases (track_id);
CREATE UNIQUE INDEX uq_rights_cases_open_track ON rights_cases (track_id) WHERE state IN ('pending', 'disabled', 'countered');
CREATE TABLE rights_case_events (
    id BIGSERIAL NOT NULL,
    notice_id INTEGER NOT NULL,
    case_id INTEGER,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor_user_id INTEGER,
    actor_role VARCHAR(10) NOT NULL,
    action VARCHAR(24) NOT NULL,
    reason TEXT NOT NULL,
    details JSONB NOT NULL,
    CONSTRAINT pk_rights_case_events PRIMARY KEY (id),
    CONSTRAINT fk_rights_case_events_notice_id_rights_notices FOREIGN KEY(notice_id) REFERENCES rights_notices (id),
    CONSTRAINT fk_rights_case_events_case_id_rights_cases FOREIGN KEY(case_id) REFERENCES rights_cases (id),
    CONSTRAINT fk_rights_case_events_actor_user_id_users FOREIGN KEY(actor_user_id) REFERENCES users (id)
);
CREATE INDEX ix_rights_case_events_case ON rights_case_events (case_id, id);
CREATE INDEX ix_rights_case_events_notice ON rights_case_events (notice_id, id);
CREATE TABLE rights_counter_notices (
    id SERIAL NOT NULL,
    case_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    name VARCHAR(200) NOT NULL,
    address TEXT NOT NULL,
    phone VARCHAR(60) NOT NULL,
    email VARCHAR(320) NOT NULL,
    statement_mistake BOOLEAN NOT NULL,
    consent_jurisdiction BOOLEAN NOT NULL,
    explanation TEXT NOT NULL,
    signature VARCHAR(200) NOT NULL,
    filed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_rights_counter_notices PRIMARY KEY (id),
    CONSTRAINT uq_rights_counter_notices_case_id UNIQUE (case_id),
    CONSTRAINT fk_rights_counter_notices_case_id_rights_cases FOREIGN KEY(case_id) REFERENCES rights_cases (id),
    CONSTRAINT fk_rights_counter_notices_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE TABLE rights_staydown (
    id SERIAL NOT NULL,
    case_id INTEGER NOT NULL,
    notice_id INTEGER NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    codes INTEGER[],
    sample INTEGER[] NOT NULL,
    active BOOLEAN NOT NULL,
    CONSTRAINT pk_rights_staydown PRIMARY KEY (id),
    CONSTRAINT uq_rights_staydown_case UNIQUE (case_id),
    CONSTRAINT fk_rights_staydown_case_id_rights_cases FOREIGN KEY(case_id) REFERENCES rights_cases (id),
    CONSTRAINT fk_rights_staydown_notice_id_rights_notices FOREIGN KEY(notice_id) REFERENCES rights_notices (id)
);
CREATE INDEX ix_rights_staydown_sample ON rights_staydown USING gin (sample) WHERE active;
CREATE INDEX ix_rights_staydown_sha256 ON rights_staydown (sha256) WHERE active;
CREATE TABLE rights_strikes (
    id SERIAL NOT NULL,
    artist_id INTEGER NOT NULL,
    notice_id INTEGER NOT NULL,
    case_id INTEGER NOT NULL,
    issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    voided_at TIMESTAMP WITH TIME ZONE,
    void_reason TEXT NOT NULL,
    CONSTRAINT pk_rights_strikes PRIMARY KEY (id),
    CONSTRAINT uq_rights_strikes_artist_notice UNIQUE (artist_id, notice_id),
    CONSTRAINT fk_rights_strikes_artist_id_artists FOREIGN KEY(artist_id) REFERENCES artists (id),
    CONSTRAINT fk_rights_strikes_notice_id_rights_notices FOREIGN KEY(notice_id) REFERENCES rights_notices (id),
    CONSTRAINT fk_rights_strikes_case_id_rights_cases FOREIGN KEY(case_id) REFERENCES rights_cases (id)
);
CREATE INDEX ix_rights_strikes_artist ON rights_strikes (artist_id, issued_at);
CREATE TABLE rights_appeals (
    id SERIAL NOT NULL,
    strike_id INTEGER NOT NULL,
    artist_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    grounds TEXT NOT NULL,
    filed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    decided_at TIMESTAMP WITH TIME ZONE,
    decided_by_user_id INTEGER,
    granted BOOLEAN,
    reason TEXT NOT NULL,
    CONSTRAINT pk_rights_appeals PRIMARY KEY (id),
    CONSTRAINT fk_rights_appeals_strike_id_rights_strikes FOREIGN KEY(strike_id) REFERENCES rights_strikes (id),
    CONSTRAINT fk_rights_appeals_artist_id_artists FOREIGN KEY(artist_id) REFERENCES artists (id),
    CONSTRAINT fk_rights_appeals_user_id_users FOREIGN KEY(user_id) REFERENCES users (id),
    CONSTRAINT fk_rights_appeals_decided_by_user_id_users FOREIGN KEY(decided_by_user_id) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_rights_appeals_strike_open ON rights_appeals (strike_id) WHERE decided_at IS NULL;
ALTER TABLE artists ADD COLUMN suspended_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX ix_ledger_entries_rights_case ON ledger_entries ((metadata->>'case_id'))
    WHERE metadata->>'event' = 'rights_escrow';
"""

TABLES = ('rights_audio_fingerprints', 'rights_claimant_flags', 'rights_notices', 'rights_suspensions', 'rights_notice_works', 'rights_cases', 'rights_case_events', 'rights_counter_notices', 'rights_staydown', 'rights_strikes', 'rights_appeals')


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_ledger_entries_rights_case")
    op.execute("ALTER TABLE artists DROP COLUMN IF EXISTS suspended_at")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
