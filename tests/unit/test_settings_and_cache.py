"""Settings from the environment, and the expiring cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from purse.config import SettingError, load_settings
from purse.domain.localize import localized
from purse.service.cache import ExpiringCache


def test_settings_come_from_purse_variables_and_flags_override_them() -> None:
    settings = load_settings(
        {"PURSE_GRPC_PORT": "6000", "PURSE_DATA_DIR": "/srv/purse", "PURSE_MIGRATE_ON_START": "no"},
        grpc_port=None,
        http_port=9000,
    )
    assert settings.grpc_port == 6000
    assert settings.http_port == 9000
    assert settings.data_dir == Path("/srv/purse")
    assert settings.migrate_on_start is False
    assert settings.embedded


def test_a_server_on_external_databases_migrates_at_start_unless_told_not_to() -> None:
    external = {
        "PURSE_DATABASE_URL": "postgresql://purse@db/purse",
        "PURSE_REDIS_URL": "redis://cache:6379/0",
    }
    assert load_settings(external).migrates_at_start
    told_not_to = load_settings({**external, "PURSE_MIGRATE_ON_START": "false"})
    assert not told_not_to.migrates_at_start


def test_the_embedded_servers_are_always_migrated_at_start() -> None:
    assert load_settings({"PURSE_MIGRATE_ON_START": "false"}).migrates_at_start


def test_a_malformed_setting_names_its_variable() -> None:
    with pytest.raises(ValueError, match="PURSE_GRPC_PORT"):
        load_settings({"PURSE_GRPC_PORT": "fifty"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PURSE_NOTIFY_PROVIDER", "webhok"),
        ("PURSE_LOG_FORMAT", "yaml"),
        ("PURSE_GRPC_PORT", "70000"),
        ("PURSE_BATCH_OPERATIONS_MAX", "0"),
        ("PURSE_SHUTDOWN_GRACE_SECONDS", "-1"),
        ("PURSE_MIGRATE_ON_START", "sometimes"),
        ("PURSE_DATABASE_URL", "mysql://db/purse"),
        ("PURSE_REDIS_URL", "127.0.0.1:6379"),
        ("PURSE_DATABASE_POOL_CONNECTIONS_MIN", "50"),
    ],
)
def test_a_setting_out_of_range_or_not_a_choice_is_refused_naming_its_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(SettingError, match=variable):
        load_settings({variable: value})


def test_the_webhook_provider_needs_a_webhook_url() -> None:
    with pytest.raises(SettingError, match="PURSE_NOTIFY_WEBHOOK_URL"):
        load_settings({"PURSE_NOTIFY_PROVIDER": "webhook"})
    settings = load_settings(
        {"PURSE_NOTIFY_PROVIDER": "webhook", "PURSE_NOTIFY_WEBHOOK_URL": "https://sms.example/"}
    )
    assert settings.notify_provider == "webhook"


@pytest.mark.parametrize(
    ("redis_url", "problem"),
    [
        ("", "PURSE_REDIS_URL"),
        ("unix:///run/redis.sock", "unix socket"),
        ("redis://cache:6379/3", "database 0 only"),
    ],
)
def test_a_redis_cluster_needs_a_tcp_url_of_database_zero(redis_url: str, problem: str) -> None:
    with pytest.raises(SettingError, match=f"PURSE_REDIS_CLUSTER: .*{problem}"):
        load_settings({"PURSE_REDIS_CLUSTER": "true", "PURSE_REDIS_URL": redis_url})


def test_a_redis_cluster_is_named_by_a_node_and_the_cluster_setting() -> None:
    settings = load_settings(
        {"PURSE_REDIS_CLUSTER": "yes", "PURSE_REDIS_URL": "rediss://:secret@cache-1:6379"}
    )
    assert settings.redis_cluster
    assert not load_settings({"PURSE_REDIS_URL": "redis://cache:6379/3"}).redis_cluster


def test_a_refused_url_is_named_without_its_password() -> None:
    with pytest.raises(SettingError) as refused:
        load_settings({"PURSE_DATABASE_URL": "mysql://user:hunter2@db/purse"})
    assert "hunter2" not in str(refused.value)


def test_cache_entries_expire_after_their_lifetime() -> None:
    now = [100.0]
    cache: ExpiringCache[str] = ExpiringCache(5.0, 10, clock=lambda: now[0])
    cache.put("a", "alpha")
    now[0] = 104.9
    assert cache.get("a") == "alpha"
    now[0] = 105.0
    assert cache.get("a") is None


def test_a_popped_cache_entry_is_gone_and_popping_a_missing_one_is_harmless() -> None:
    cache: ExpiringCache[str] = ExpiringCache(60.0, 10)
    cache.put("a", "alpha")
    cache.pop("a")
    cache.pop("b")
    assert cache.get("a") is None


def test_cache_holds_at_most_its_bound_dropping_the_oldest() -> None:
    cache: ExpiringCache[int] = ExpiringCache(60.0, 3)
    for number in range(5):
        cache.put(number, number)
    assert [cache.get(number) for number in range(5)] == [None, None, 2, 3, 4]


def test_titles_follow_the_customer_language_then_english_then_the_name() -> None:
    texts = {"en": "Gift coffee", "uk": "Подарункова кава"}
    assert localized(texts, "uk-UA", "Cups") == "Подарункова кава"
    assert localized(texts, "de", "Cups") == "Gift coffee"
    assert localized({}, "de", "Cups") == "Cups"
    assert localized({"pl": "Kawa"}, "de", "Cups") == "Kawa"


def test_a_serving_process_freezes_what_it_built_and_collects_young_objects_less_often() -> None:
    import gc

    from purse.bootstrap import _tune_garbage_collector

    before = gc.get_threshold()
    try:
        _tune_garbage_collector(10_000)
        assert gc.get_threshold() == (10_000, before[1], before[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
