"""rights fingerprint — a case found by a reference recording's acoustic fingerprint says so (issue 11)

Revision ID: 0015_rights_fingerprint
Revises: 0014_partition_race

A notice may name its tracks by a reference audio file, matched by Chromaprint (`fpcalc`); those cases were
recorded as via 'named', as if the claimant had named the track. `rights_cases.via` gains 'fingerprint'
(the column is VARCHAR(12), CHECK ck_rights_cases_via). Existing rows are left as they are: which of them
came from a reference is not recorded anywhere else.
"""

from alembic import op

revision = "0015_rights_fingerprint"
down_revision = "0014_partition_race"
branch_labels = None
depends_on = None


def _vias(allowed: str) -> None:
    op.execute("ALTER TABLE rights_cases DROP CONSTRAINT ck_rights_cases_via")
    op.execute(f"ALTER TABLE rights_cases ADD CONSTRAINT ck_rights_cases_via CHECK (via IN ({allowed}))")


def upgrade() -> None:
    _vias("'named', 'same_audio', 'fingerprint'")


def downgrade() -> None:
    op.execute("UPDATE rights_cases SET via = 'named' WHERE via = 'fingerprint'")
    _vias("'named', 'same_audio'")
