"""A second edition of the form, made only by editing a copy of the shipped form file (other years,
every metric key renamed, one metric more), runs end to end: read, validated, consolidated, written.

The submissions are built here with openpyxl in the shape units send (the builders in `builders.py`
know the shipped edition's metrics only).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import REGISTRY, read_csv
from openpyxl.styles import Alignment, Border, Font, Side

from pipeline.cli import main
from pipeline.core.form import DEFAULT_FORM, FormDefinitionError, load_form
from pipeline.core.registry import load_registry, write_registry

EDITION = Path(__file__).resolve().parent / "editions" / "phat_trien_dang_2024_2026.toml"
YEARS = (2024, 2025, 2026)
MTIME = 1_735_700_000  # 2025-01-01, long settled

# The second edition's metrics in form order, and the column each takes on a unit's own file.
KEYS = ("tong_doan_vien", "doan_vien_uu_tu", "duoc_gioi_thieu", "chi_tieu_giao", "kn_hoc_sinh", "kn_sinh_vien",
        "kn_tnccn_nha_nuoc", "kn_tnccn_ngoai_nha_nuoc")
LABELS = {
    "tong_doan_vien": "Tổng số đoàn viên",
    "doan_vien_uu_tu": "Số đoàn viên ưu tú",
    "duoc_gioi_thieu": "Số đoàn viên được giới thiệu",
    "chi_tieu_giao": "Chỉ tiêu được giao kết nạp Đảng",
    "kn_hoc_sinh": "Số học sinh được kết nạp đảng",
    "kn_sinh_vien": "Số sinh viên được kết nạp đảng",
    "kn_tnccn_nha_nuoc": "Khu vực nhà nước",
    "kn_tnccn_ngoai_nha_nuoc": "Khu vực DN ngoài nhà nước",
}
WORKERS_GROUP = "Số TNCCN được kết nạp Đảng"

QUOTAS = {"DT": (10, 12, 14), "PG": (8, 8, 9), "TDM": (20, 22, 24)}

# year → figures in KEYS order.
FIGURES = {
    # Consistent, with its quota, and a correct total row: no issue.
    "DT": {2024: (1200, 150, 40, 10, 2, 0, 3, 5),
           2025: (1250, 160, 45, 12, 3, 0, 4, 6),
           2026: (1300, 170, 50, 14, 2, 1, 5, 7)},
    # 2025's quota differs from the allocation (8): a warning, still accepted.
    "PG": {2024: (900, 100, 30, 8, 1, 0, 2, 4),
           2025: (950, 110, 35, 9, 1, 1, 2, 5),
           2026: (980, 115, 38, 9, 2, 0, 3, 4)},
    # 2025: more members introduced (130) than outstanding (120): the new rule's error, rejected.
    "TDM": {2024: (3000, 110, 60, 20, 5, 4, 3, 6),
            2025: (3100, 120, 130, 22, 6, 5, 3, 6),
            2026: (3200, 125, 70, 24, 6, 6, 4, 6)},
}

# The province totals over the accepted units (DT and PG), worked out by hand.
TOTALS = {
    2024: dict(zip(KEYS, (2100, 250, 70, 18, 3, 0, 5, 9), strict=True)),
    2025: dict(zip(KEYS, (2200, 270, 80, 21, 4, 1, 6, 11), strict=True)),
    2026: dict(zip(KEYS, (2280, 285, 88, 23, 4, 1, 8, 11), strict=True)),
}
ADMITTED = {2024: 17, 2025: 22, 2026: 24}


def write_submission(path: Path, unit_line: str, figures: dict[int, tuple[int, ...]], *,
                     order: tuple[str, ...] = KEYS, total_row: bool = False) -> Path:
    """A unit's report for the 2024–2026 form: letterhead, title, two header rows (the workers'
    columns under one merged group label), a row per year, optionally a total row, the signature."""
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Biểu mẫu"
    last = 2 + len(order)
    ws["A1"] = "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
    ws["A2"] = unit_line
    ws.cell(1, 6, "ĐOÀN TNCS HỒ CHÍ MINH")
    ws.cell(2, 6, "Bình Dương, ngày 10 tháng 01 năm 2027")
    ws["A4"] = "BÁO CÁO"
    ws["A5"] = ("Kết quả công tác phát triển đảng trong học sinh, sinh viên, thanh niên công nhân "
                "tỉnh Bình Dương")
    ws["A6"] = "giai đoạn 2024 - 2026"
    for row in (4, 5, 6):
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last)
    ws["A8"], ws["B8"] = "TT", "Năm"
    ws.merge_cells("A8:A9")
    ws.merge_cells("B8:B9")
    group_cols = []
    for offset, key in enumerate(order):
        col = 3 + offset
        if key.startswith("kn_tnccn"):
            group_cols.append(col)
            ws.cell(9, col, LABELS[key])
        else:
            ws.cell(8, col, LABELS[key])
            ws.merge_cells(start_row=8, start_column=col, end_row=9, end_column=col)
    ws.cell(8, min(group_cols), WORKERS_GROUP)
    ws.merge_cells(start_row=8, start_column=min(group_cols), end_row=8, end_column=max(group_cols))
    rows = {year: 10 + i for i, year in enumerate(YEARS)}
    for i, year in enumerate(YEARS):
        row = rows[year]
        ws.cell(row, 1, i + 1)
        ws.cell(row, 2, f"Năm {year}")
        values = dict(zip(KEYS, figures[year], strict=True))
        for offset, key in enumerate(order):
            ws.cell(row, 3 + offset, values[key])
    end = max(rows.values())
    if total_row:
        end += 1
        ws.cell(end, 1, "Tổng cộng")
        ws.merge_cells(start_row=end, start_column=1, end_row=end, end_column=2)
        for offset, key in enumerate(order):
            index = KEYS.index(key)
            ws.cell(end, 3 + offset, sum(figures[year][index] for year in YEARS))
    for row in ws.iter_rows(min_row=8, max_row=end, max_col=last):
        for cell in row:
            cell.border = box
            cell.font = Font(name="Times New Roman", size=12)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.cell(end + 2, 6, "TM. BAN THƯỜNG VỤ")
    ws.cell(end + 3, 6, "BÍ THƯ")
    ws.cell(end + 7, 6, "Nguyễn Văn An")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    os.utime(path, (MTIME, MTIME))
    return path


@pytest.fixture(scope="module")
def edition():
    return load_form(EDITION)


@pytest.fixture(scope="module")
def registry_path(tmp_path_factory) -> Path:
    """Three of the province's units, with quotas for both editions' years."""
    shipped = load_registry(REGISTRY)
    units = [shipped.unit(code) for code in QUOTAS]
    quotas = {(code, year): shipped.quotas[(code, year)] for code in QUOTAS for year in (2021, 2022, 2023)
              if (code, year) in shipped.quotas}
    quotas.update({(code, year): QUOTAS[code][i] for code in QUOTAS for i, year in enumerate(YEARS)})
    return write_registry(tmp_path_factory.mktemp("registry") / "don_vi.xlsx", units, quotas, author="Tỉnh đoàn")


def second_edition_inbox(inbox: Path) -> Path:
    write_submission(inbox / "Báo cáo PTĐ - Dầu Tiếng 2024-2026.xlsx", "BCH HUYỆN ĐOÀN DẦU TIẾNG", FIGURES["DT"],
                     total_row=True)
    write_submission(inbox / "Phu Giao PTD 2024-2026.xlsx", "BCH HUYỆN ĐOÀN PHÚ GIÁO", FIGURES["PG"])
    # Its own column order: quota before the introduced members; the reader goes by the labels.
    swapped = ("tong_doan_vien", "doan_vien_uu_tu", "chi_tieu_giao", "duoc_gioi_thieu", "kn_hoc_sinh",
               "kn_sinh_vien", "kn_tnccn_nha_nuoc", "kn_tnccn_ngoai_nha_nuoc")
    write_submission(inbox / "TDM - bao cao.xlsx", "BCH THÀNH ĐOÀN THỦ DẦU MỘT", FIGURES["TDM"], order=swapped)
    return inbox


def run_cli(inbox: Path, outbox: Path, registry: Path, form: Path, tmp_path: Path) -> str:
    config = tmp_path / "empty.toml"  # so a tonghop.toml in the working directory cannot change the run
    config.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--inbox", str(inbox), "--outbox", str(outbox), "--registry",
                                       str(registry), "--form", str(form), "--config", str(config)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, registry_path):
    base = tmp_path_factory.mktemp("second")
    inbox = second_edition_inbox(base / "inbox")
    output = run_cli(inbox, base / "outbox", registry_path, EDITION, base)
    [folder] = run_folders(base / "outbox")
    return {"folder": folder, "output": output, "book": openpyxl.load_workbook(folder / "tong_hop.xlsx")}


# ---------------------------------------------------------------- the form file

def test_second_edition_is_read_with_its_own_keys_roles_and_shares(edition):
    assert edition.edition == "phat-trien-dang-2024-2026"
    assert edition.years == YEARS
    assert edition.metric_keys == KEYS
    assert (edition.roles.members, edition.roles.outstanding, edition.roles.quota) == (
        "tong_doan_vien", "doan_vien_uu_tu", "chi_tieu_giao")
    assert edition.admitted_metrics == ("kn_hoc_sinh", "kn_sinh_vien", "kn_tnccn_nha_nuoc", "kn_tnccn_ngoai_nha_nuoc")
    by_key = {share.key: share for share in edition.shares}
    assert by_key["admitted_of_introduced"].numerator == edition.admitted_metrics
    assert by_key["admitted_of_introduced"].denominator == ("duoc_gioi_thieu",)
    assert by_key["outstanding_of_members"].denominator == ("tong_doan_vien",)
    assert all(rule.explanation for rule in edition.rules)


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_FORM.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "edited.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_a_role_naming_an_unknown_metric_is_refused(tmp_path):
    path = _edited(tmp_path, 'quota = "quota_assigned"', 'quota = "chi_tieu_giao"')
    with pytest.raises(FormDefinitionError, match=r"roles\.quota.*'chi_tieu_giao'"):
        load_form(path)


def test_a_share_naming_an_unknown_metric_is_refused(tmp_path):
    path = _edited(tmp_path, 'numerator = ["admitted_pupils"]', 'numerator = ["kn_hoc_sinh"]')
    with pytest.raises(FormDefinitionError, match="pupils_of_admitted.*'kn_hoc_sinh'"):
        load_form(path)


def test_a_rule_without_explanation_is_refused(tmp_path):
    text = DEFAULT_FORM.read_text(encoding="utf-8")
    start = text.index('code = "quota_mismatch"')
    line = text.index("explanation = ", start)
    path = tmp_path / "edited.toml"
    path.write_text(text[:line] + text[text.index("\n", line) + 1:], encoding="utf-8")
    with pytest.raises(FormDefinitionError, match="quota_mismatch.*explanation"):
        load_form(path)


def test_a_form_without_roles_is_refused(tmp_path):
    path = _edited(tmp_path, "[roles]\n", "[roles_old]\n")
    with pytest.raises(FormDefinitionError, match=r"\[roles\]"):
        load_form(path)


# ---------------------------------------------------------------- end to end

def test_values_and_totals_carry_the_new_keys_and_exact_numbers(second_run):
    folder = second_run["folder"]
    assert "2/3 đơn vị hợp lệ, 1 trả lại, 0 chưa nộp" in second_run["output"]
    values = {(r["unit_code"], int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(folder / "values.csv")}
    expected = {(code, year, key): value for code in ("DT", "PG") for year in YEARS
                for key, value in zip(KEYS, FIGURES[code][year], strict=True)}
    assert values == expected
    totals = {(int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(folder / "totals.csv")}
    assert totals == {(year, key): value for year, row in TOTALS.items() for key, value in row.items()}
    statuses = {r["unit_code"]: r["status"] for r in read_csv(folder / "submissions.csv") if r["unit_code"]}
    assert statuses == {"DT": "accepted", "PG": "accepted", "TDM": "rejected"}


def test_rules_fire_with_their_codes_at_the_right_cells(second_run):
    issues = [(r["unit_code"], r["code"], r["cell"], r["severity"], r["message"])
              for r in read_csv(second_run["folder"] / "issues.csv")
              if r["severity"] in ("error", "warning")]
    assert ("TDM", "introduced_exceeds_outstanding", "F11", "error",
            "Năm 2025: số đoàn viên được giới thiệu (130) lớn hơn số đoàn viên ưu tú (120).") in issues
    assert ("PG", "quota_mismatch", "F11", "warning",
            "Năm 2025: chỉ tiêu ghi 9 khác chỉ tiêu Tỉnh đoàn giao (8).") in issues
    assert not [i for i in issues if i[0] == "DT"]  # its total row adds up
    assert {i[1] for i in issues} == {"introduced_exceeds_outstanding", "quota_mismatch"}


def test_province_sheet_holds_the_totals_shares_and_texts(second_run):
    sheet = second_run["book"]["Báo cáo tỉnh"]
    assert sheet["A1"].value == "BCH ĐOÀN TỈNH BÌNH DƯƠNG"
    assert sheet["A6"].value == "giai đoạn 2024 - 2026"
    header = [sheet.cell(8, col).value for col in range(3, 3 + len(KEYS))]
    assert header[:4] == ["Tổng số đoàn viên", "Số đoàn viên ưu tú", "Số đoàn viên được giới thiệu",
                          "Chỉ tiêu được giao kết nạp Đảng"]
    assert sheet.cell(9, 9).value == "Khu vực nhà nước" and sheet.cell(9, 10).value == "Khu vực DN ngoài nhà nước"
    for i, year in enumerate(YEARS):
        row = 10 + i
        assert sheet.cell(row, 2).value == f"Năm {year}"
        assert [sheet.cell(row, 3 + j).value for j in range(len(KEYS))] == [TOTALS[year][k] for k in KEYS]
    labels = {sheet.cell(r, 2).value: r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 2).value}
    assert "TỈ TRỌNG (%)" in labels
    # Years sit in the last three columns (H, I, J) of the shares table.
    introduced = labels["Được kết nạp / đoàn viên được giới thiệu"]
    assert [sheet.cell(introduced, col).value for col in (8, 9, 10)] == pytest.approx(
        [ADMITTED[year] / TOTALS[year]["duoc_gioi_thieu"] for year in YEARS])
    pupils = labels["Học sinh / số được kết nạp"]
    assert [sheet.cell(pupils, col).value for col in (8, 9, 10)] == pytest.approx(
        [TOTALS[year]["kn_hoc_sinh"] / ADMITTED[year] for year in YEARS])
    members = labels["Đoàn viên ưu tú / tổng số đoàn viên"]
    assert [sheet.cell(members, col).value for col in (8, 9, 10)] == pytest.approx(
        [TOTALS[year]["doan_vien_uu_tu"] / TOTALS[year]["tong_doan_vien"] for year in YEARS])
    texts = {cell.value for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)}
    assert {"TM. BAN THƯỜNG VỤ TỈNH ĐOÀN", "BÍ THƯ", "(ký, ghi rõ họ tên)"} <= texts


def test_values_and_quota_sheets_use_the_new_edition(second_run):
    book = second_run["book"]
    values = book["Số liệu đơn vị"]
    assert [c.value for c in values[1]][3:3 + len(KEYS)] == [LABELS[k] if not k.startswith("kn_tnccn") else
                                                              f"Số TNCCN được kết nạp Đảng – {LABELS[k]}"
                                                              for k in KEYS]
    rows = {(r[0], r[2]): r[3:3 + len(KEYS)] for r in values.iter_rows(min_row=2, values_only=True) if r[0]}
    assert rows[("DT", 2025)] == FIGURES["DT"][2025]
    assert rows[("TỈNH", 2026)] == tuple(TOTALS[2026][k] for k in KEYS)
    quota = {(r[0], r[2]): r[3:7] for r in book["Chỉ tiêu"].iter_rows(min_row=2, max_col=7, values_only=True)
             if r[0] in QUOTAS}
    # allocated, reported, admitted, achievement
    assert quota[("DT", 2024)] == (10, 10, 10, 1.0)
    assert quota[("PG", 2025)][:3] == (8, 9, 9)
    assert quota[("TDM", 2025)] == (22, None, None, None)  # rejected: nothing reported counts


def test_templates_guide_lists_every_rule_explanation(tmp_path, edition, registry_path):
    out = tmp_path / "bieu_mau"
    result = CliRunner().invoke(main, ["templates", "--form", str(EDITION), "--registry", str(registry_path),
                                       "--out", str(out), "--deadline", "2027-01-15"])
    assert result.exit_code == 0, (result.output, result.exception)
    copy = openpyxl.load_workbook(out / "DT - Huyện đoàn Dầu Tiếng.xlsx")
    guide = [str(c.value) for c in copy["Hướng dẫn"]["A"] if c.value]
    start = guide.index("3. Những điểm Tỉnh đoàn sẽ kiểm tra")
    assert guide[start + 1:] == [f"- {edition.explanation(rule)}" for rule in edition.rules]
    assert "- Số đoàn viên được giới thiệu không lớn hơn số ĐVUT." in " ".join(guide)
    form_sheet = copy["Biểu mẫu"]
    assert form_sheet["E8"].value == "Số đoàn viên được giới thiệu"
    assert [form_sheet[f"F{row}"].value for row in (10, 11, 12)] == list(QUOTAS["DT"])  # the quota, locked
    assert form_sheet["B10"].value == "Năm 2024"


def test_a_filled_copy_of_the_new_edition_is_accepted_by_its_token(tmp_path, registry_path):
    out = tmp_path / "bieu_mau"
    result = CliRunner().invoke(main, ["templates", "--form", str(EDITION), "--registry", str(registry_path),
                                       "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    copy = openpyxl.load_workbook(out / "PG - Huyện đoàn Phú Giáo.xlsx")
    sheet = copy["Biểu mẫu"]
    for i, year in enumerate(YEARS):
        figures = dict(zip(KEYS, FIGURES["DT"][year], strict=True))  # consistent; the quota stays the locked one
        for j, key in enumerate(KEYS):
            if key != "chi_tieu_giao":
                sheet.cell(10 + i, 3 + j, figures[key])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    copy.save(inbox / "file1.xlsx")
    os.utime(inbox / "file1.xlsx", (MTIME, MTIME))
    run_cli(inbox, tmp_path / "outbox", registry_path, EDITION, tmp_path)
    [folder] = run_folders(tmp_path / "outbox")
    [row] = [r for r in read_csv(folder / "submissions.csv") if r["file"] == "file1.xlsx"]
    assert (row["unit_code"], row["status"]) == ("PG", "accepted")
    values = {(int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(folder / "values.csv")}
    assert values[(2025, "duoc_gioi_thieu")] == 45 and values[(2026, "chi_tieu_giao")] == 9


# ---------------------------------------------------------------- two editions, one outbox

def test_a_run_of_another_edition_says_new_edition_instead_of_changes(tmp_path, registry_path):
    from builders import FormSpec, default_values, write_openpyxl

    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    shipped = load_registry(registry_path)
    spec = FormSpec(unit_line="BCH HUYỆN ĐOÀN DẦU TIẾNG",
                    values=default_values("DT", quotas={y: shipped.quotas[("DT", y)] for y in (2021, 2022, 2023)}))
    first_file = write_openpyxl(spec, inbox / "Dau Tieng 2021-2023.xlsx")
    os.utime(first_file, (MTIME, MTIME))
    run_cli(inbox, outbox, registry_path, DEFAULT_FORM, tmp_path)
    first_changes = _changes(run_folders(outbox)[0])
    assert len(first_changes) == 1 and first_changes[0][0] == "Bài nộp mới hoặc thay thế"  # the first run

    shutil.rmtree(inbox)
    second_edition_inbox(inbox)
    output = run_cli(inbox, outbox, registry_path, EDITION, tmp_path)
    assert "; 1 thay đổi." in output
    second = run_folders(outbox)[-1]
    changes = _changes(second)
    assert changes == [("Mẫu biểu mới",
                        "Lần tổng hợp này dùng mẫu biểu mới \"phat-trien-dang-2024-2026\" (lần trước dùng mẫu "
                        "\"phat-trien-dang-2021-2023\"); số liệu của hai mẫu biểu không so sánh với nhau nên "
                        "không liệt kê thay đổi.",
                        "phat-trien-dang-2021-2023", "phat-trien-dang-2024-2026")]
    # The run itself is the second edition's, complete.
    totals = {(int(r["year"]), r["metric"]): int(r["value"]) for r in read_csv(second / "totals.csv")}
    assert totals[(2026, "tong_doan_vien")] == 2280

    # A third run of the same edition compares values again.
    write_submission(inbox / "Phu Giao PTD 2024-2026.xlsx", "BCH HUYỆN ĐOÀN PHÚ GIÁO",
                     {**FIGURES["PG"], 2026: (990, *FIGURES["PG"][2026][1:])})
    os.utime(inbox / "Phu Giao PTD 2024-2026.xlsx", (MTIME + 60, MTIME + 60))
    run_cli(inbox, outbox, registry_path, EDITION, tmp_path)
    third = _changes(run_folders(outbox)[-1])
    kinds = [kind for kind, *_ in third]
    assert "Mẫu biểu mới" not in kinds
    assert ("Số liệu thay đổi", "Huyện đoàn Phú Giáo, năm 2026, Tổng số đoàn viên: 980 → 990.", "980", "990") in third


def _changes(folder: Path) -> list[tuple]:
    """(kind, text, old, new) of every row of the workbook's "Thay đổi" sheet."""
    sheet = openpyxl.load_workbook(folder / "tong_hop.xlsx")["Thay đổi"]
    return [(r[1], r[3], r[5], r[6]) for r in sheet.iter_rows(min_row=4, values_only=True) if r[1]]


def test_the_snapshot_keeps_its_edition_and_an_old_one_compares_as_before(tmp_path, edition):
    from pipeline.stages.changes import diff
    from pipeline.stages.consolidate import Consolidation
    from pipeline.nightly.ledger import Ledger, Snapshot

    values = {("DT", 2024, "tong_doan_vien"): 1200}
    with Ledger(tmp_path / "so.sqlite") as ledger:
        run = ledger.start_run("fp")
        ledger.save_snapshot(run, Snapshot(values, {"DT": ("accepted", "a.xlsx", "abc")}, set(), edition.edition))
        assert ledger.snapshot(run).edition == "phat-trien-dang-2024-2026"
    registry = load_registry(REGISTRY)
    consolidation = Consolidation(form=edition, registry=registry, files=[], submissions={}, missing=[], totals={},
                                  issues=[])
    current = Snapshot({("DT", 2024, "tong_doan_vien"): 1250}, {"DT": ("accepted", "a.xlsx", "abc")}, set(),
                       edition.edition)
    # Saved before editions were recorded: the values are compared, as they always were.
    unknown = Snapshot(values, {"DT": ("accepted", "a.xlsx", "abc")}, set())
    assert [(c.kind, c.old, c.new) for c in diff(unknown, consolidation, current)] == [("value", "1.200", "1.250")]
    other = Snapshot(values, {"DT": ("accepted", "a.xlsx", "abc")}, set(), "phat-trien-dang-2021-2023")
    [change] = diff(other, consolidation, current)
    assert (change.kind, change.old, change.new) == ("edition", "phat-trien-dang-2021-2023", edition.edition)
