import pytest
from pydantic import ValidationError

from tests.conftest import FUNCTION_ENVIRONMENT
from xero_sync.config import Settings


def test_settings_read_the_functions_environment():
    settings = Settings.model_validate(FUNCTION_ENVIRONMENT)
    assert settings.clients_table == "xero-sync-local-ClientsTable"
    assert settings.practice_claim == "practice_id"
    assert settings.max_request_body_bytes == 16 * 1024


def test_a_missing_setting_is_named_at_start_up():
    environment = {k: v for k, v in FUNCTION_ENVIRONMENT.items() if k != "SYNC_QUEUE_URL"}
    with pytest.raises(ValidationError, match="SYNC_QUEUE_URL"):
        Settings.model_validate(environment)


def test_a_malformed_url_is_refused():
    with pytest.raises(ValidationError, match="XERO_API_URL"):
        Settings.model_validate({**FUNCTION_ENVIRONMENT, "XERO_API_URL": "not a url"})
