"""The registry workbook written by the library reads back as the same registry."""

from __future__ import annotations

from pipeline.core.registry import Unit, load_registry, write_registry


def test_written_registry_reads_back_unit_for_unit(tmp_path, registry):
    path = write_registry(tmp_path / "don_vi.xlsx", registry.units, registry.quotas, author="Tỉnh đoàn")
    again = load_registry(path)
    assert again.units == registry.units
    assert again.quotas == registry.quotas


def test_aliases_and_empty_email_survive(tmp_path):
    units = [Unit("TDM", "Thành đoàn Thủ Dầu Một", ("TP Thủ Dầu Một", "TDM"), "tdm@example.vn"),
             Unit("DT", "Huyện đoàn Dầu Tiếng", (), "")]
    quotas = {("TDM", 2021): 12, ("TDM", 2022): 0, ("DT", 2023): 7}
    again = load_registry(write_registry(tmp_path / "r.xlsx", units, quotas, author="x"))
    assert again.units == tuple(units) and again.quotas == quotas
