"""Intake of a class's uploads: no upload stops the class, loses a student or escapes its bounds.

Each case of issue 11 ("one student hurts the class") at the cheapest level: the unpacking and
keying functions of autograder/intake.py on downloads built here, with the exact outcome.
"""

import io
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import intake
from autograder.intake import (ExtractLimits, check_submission, collect_folder, collect_zip, student_key,
                               write_collected)

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT, NOTEBOOK = "session07_residual_cnn", "residual_cnn.ipynb"
RELEASE = REPO / "release" / ASSIGNMENT / NOTEBOOK
RELEASE_BYTES = RELEASE.read_bytes()


def zipped(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def zeros_zip(name: str, size: int) -> bytes:
    """A zip whose one member inflates `size` zero bytes from about size/1000 (a bomb's core)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(deflated(name), "w", force_zip64=True) as stream:
            chunk = bytes(2**20)
            for _ in range(size // 2**20):
                stream.write(chunk)
    return buffer.getvalue()


def download(tmp_path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "download.zip"
    path.write_bytes(zipped(members))
    return path


def collect(tmp_path, path: Path, limits=intake.LIMITS) -> dict:
    return collect_zip(path, tmp_path / "staging", NOTEBOOK, limits)


def submitted(tmp_path, students, key: str) -> Path:
    folder = tmp_path / "submitted" / key / ASSIGNMENT
    write_collected(students[key], folder)
    return folder


def test_a_notebook_next_to_a_zip_holding_it_is_graded_and_flagged(tmp_path):
    students = collect(tmp_path, download(tmp_path, {
        "Ana Silva_101_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Ana Silva_101_assignsubmission_file_/residual_cnn.zip": zipped({NOTEBOOK: RELEASE_BYTES})}))
    assert list(students) == ["101"] and students["101"].reasons == []
    result = check_submission(submitted(tmp_path, students, "101"), "101", RELEASE)
    assert result.gradable and result.reasons == ["extra files ignored: residual_cnn.zip"]


def test_two_files_with_one_path_are_both_kept_and_flagged(tmp_path):
    other = RELEASE_BYTES.replace(b"YOUR CODE HERE", b"the second copy")
    students = collect(tmp_path, download(tmp_path, {"ana/residual_cnn.ipynb": RELEASE_BYTES,
                                               "ana\\residual_cnn.ipynb": other}))
    assert students["ana"].reasons == ["two files named residual_cnn.ipynb: the first is graded, "
                                       "the other kept as residual_cnn (2).ipynb"]
    folder = submitted(tmp_path, students, "ana")
    assert (folder / NOTEBOOK).read_bytes() == RELEASE_BYTES
    assert (folder / "residual_cnn (2).ipynb").read_bytes() == other


def test_students_are_keyed_by_the_lms_id_so_namesakes_stay_apart(tmp_path):
    students = collect(tmp_path, download(tmp_path, {
        "Ana Silva_101_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Ana Silva_102_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "silvaana_4711_9001_residual_cnn.ipynb": RELEASE_BYTES,             # Canvas
        "silvaana_LATE_4712_9002_residual_cnn_v2.ipynb": RELEASE_BYTES}))
    assert sorted(students) == ["101", "102", "4711", "4712"]
    assert {students[k].name for k in ("101", "102")} == {"Ana Silva"}
    assert {students[k].name for k in ("4711", "4712")} == {"silvaana"}
    assert list(students["4712"].files) == [("residual_cnn_v2.ipynb",)]
    assert all(student.reasons == [] for student in students.values())


def test_namesakes_without_an_id_are_flagged_not_silently_merged(tmp_path):
    students = collect(tmp_path, download(tmp_path, {"ana_residual_cnn.ipynb": RELEASE_BYTES,
                                               "ana-final.ipynb": RELEASE_BYTES}))
    assert list(students) == ["ana"]
    assert students["ana"].reasons == ["2 uploads carry the name 'ana' and no LMS id: check that "
                                       "they are one student"]


def test_names_in_any_script_are_students(tmp_path):
    students = collect(tmp_path, download(tmp_path, {
        "Élodie Dupont_201_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Øyvind_residual_cnn.ipynb": RELEASE_BYTES,
        "Željko/residual_cnn.ipynb": RELEASE_BYTES,
        "陈静.ipynb": RELEASE_BYTES}))
    assert sorted(students) == sorted(["201", "Øyvind", "Željko", "陈静"])
    assert students["201"].name == "Élodie Dupont"
    assert list(students["陈静"].files) == [(NOTEBOOK,)]
    assert (tmp_path / "class").mkdir() is None
    (tmp_path / "class" / "Øyvind Berg.ipynb").write_bytes(RELEASE_BYTES)
    (tmp_path / "class" / "Élodie").mkdir()
    (tmp_path / "class" / "Élodie" / "residual_cnn.ipynb").write_bytes(RELEASE_BYTES)
    assert sorted(collect_folder(tmp_path / "class", NOTEBOOK)) == ["Élodie", "Øyvind-Berg"]


def test_unsafe_member_paths_stay_in_the_students_folder_and_are_flagged(tmp_path):
    students = collect(tmp_path, download(tmp_path, {
        "ana_assignsubmission_file_/../../../etc/residual_cnn.ipynb": RELEASE_BYTES,
        "ben_assignsubmission_file_\\sub\\residual_cnn.ipynb": RELEASE_BYTES,
        "/cho/residual_cnn.ipynb": RELEASE_BYTES}))
    assert sorted(students) == ["ana", "ben", "cho"]
    assert students["ana"].reasons == ["the path 'ana_assignsubmission_file_/../../../etc/residual_cnn.ipynb' "
                                       "in the download was unsafe; read as 'etc/residual_cnn.ipynb'"]
    assert students["ben"].reasons == []           # a Windows zip's backslashes are folders
    assert list(students["ben"].files) == [("sub", NOTEBOOK)]
    assert students["cho"].reasons[0].startswith("the path '/cho/residual_cnn.ipynb' in the download was unsafe")
    for key in students:
        folder = submitted(tmp_path, students, key)
        assert all(folder in p.resolve().parents for p in folder.rglob("*"))
    assert not (tmp_path / "etc").exists()
    result = check_submission(tmp_path / "submitted" / "ana" / ASSIGNMENT, "ana", RELEASE)
    assert result.gradable and result.reasons == ["the notebook was named 'etc/residual_cnn.ipynb', "
                                                  "not 'residual_cnn.ipynb'"]


def test_a_file_without_a_student_name_becomes_its_own_flagged_submission(tmp_path):
    students = collect(tmp_path, download(tmp_path, {"README": b"hello", "ana.ipynb": RELEASE_BYTES}))
    assert sorted(students) == ["ana", "unidentified-README"]
    assert students["unidentified-README"].reasons == ["the student could not be told from the file name 'README'"]


def test_a_corrupt_upload_is_that_students_review_not_the_classes(tmp_path):
    good = zipped({"ana/residual_cnn.ipynb": RELEASE_BYTES, "ben/residual_cnn.ipynb": RELEASE_BYTES})
    # Flip bytes inside ben's compressed data: its CRC (or inflate) fails, ana's does not.
    start = good.index(b"ben/residual_cnn.ipynb") + len("ben/residual_cnn.ipynb") + 40
    broken = good[:start] + bytes(b ^ 0xFF for b in good[start:start + 200]) + good[start + 200:]
    path = tmp_path / "download.zip"
    path.write_bytes(broken)
    students = collect(tmp_path, path)
    assert students["ana"].reasons == [] and list(students["ana"].files) == [(NOTEBOOK,)]
    assert students["ben"].files == {}
    assert students["ben"].reasons[0].startswith("residual_cnn.ipynb was not unpacked: it cannot be read (")
    # A student's own zip that is corrupt: graded as nothing recovered, with the reason.
    folder = tmp_path / "cho"
    folder.mkdir()
    (folder / "residual_cnn.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    result = check_submission(folder, "cho", RELEASE)
    assert not result.gradable
    assert result.reasons == ["residual_cnn.zip is not a readable zip (BadZipFile: corrupt or unsupported)"]


def test_a_corrupt_download_is_reported_not_read(tmp_path):
    with pytest.raises(zipfile.BadZipFile):
        collect_zip(io.BytesIO(b"PK\x05\x06 not a zip at all"), tmp_path / "staging")


def test_a_nested_zip_bomb_is_never_unpacked_and_its_original_is_kept(tmp_path):
    core = zeros_zip("residual_cnn.ipynb", 128 * 2**20)        # 128 MiB of zeros
    nested = zipped({"inner.zip": core})
    assert len(core) < 2**20 and len(nested) < 2**20
    path = download(tmp_path, {"ana_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
                               "bomb_assignsubmission_file_/residual_cnn.zip": core,
                               "nest_assignsubmission_file_/submission.zip": nested})
    with zipfile.ZipFile(path, "a") as archive:  # and one member of the download itself that inflates
        with archive.open(deflated("flat_assignsubmission_file_/residual_cnn.ipynb"), "w",
                          force_zip64=True) as stream:
            for _ in range(128):
                stream.write(bytes(2**20))
    tracemalloc.start()
    students = collect(tmp_path, path)
    results = {key: check_submission(submitted(tmp_path, students, key), key, RELEASE) for key in students}
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB held while unpacking bombs"
    assert students["flat"].reasons == ["residual_cnn.ipynb was not unpacked: it expands more than 100 "
                                        "times (a zip bomb?)"]
    assert not results["flat"].gradable and results["flat"].reasons == ["nothing was submitted"]
    assert results["bomb"].reasons == ["residual_cnn.ipynb in residual_cnn.zip was not unpacked: it unpacks "
                                       "to 128 MiB, over the 20 MiB limit"]
    assert results["nest"].reasons == ["submission.zip holds only another zip (inner.zip): archives are "
                                       "opened 1 level deep, not further"]
    assert results["ana"].gradable and results["ana"].reasons == []
    # The bomb stays packed in the student's folder (its original), nothing was inflated to disk.
    assert (tmp_path / "submitted" / "bomb" / ASSIGNMENT / "residual_cnn.zip").read_bytes() == core
    total = sum(p.stat().st_size for p in (tmp_path / "submitted").rglob("*") if p.is_file())
    assert total < 4 * 2**20


def test_a_member_that_lies_about_its_size_is_stopped_at_the_bound():
    data = zeros_zip("x.ipynb", 8 * 2**20)
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = archive.infolist()[0]
    info.file_size = 100  # what a forged header claims
    with pytest.raises(intake.UnsafeMember):
        intake.read_member(archive, info, 2**20)


def test_past_the_count_and_size_limits_students_are_flagged_not_lost(tmp_path):
    members = {"s0_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
               "s0_assignsubmission_file_/notes.txt": b"x" * 1000,
               **{f"s{i}_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES for i in range(1, 5)}}
    limits = ExtractLimits(files=4, student_files=1)
    students = collect(tmp_path, download(tmp_path, members), limits)
    assert sorted(students) == [f"s{i}" for i in range(5)]
    assert students["s0"].reasons == ["more than 1 files: the rest were not unpacked"]
    for key in ("s3", "s4"):
        assert students[key].reasons == ["the download holds more than 4 files: residual_cnn.ipynb was not unpacked"]


def test_an_uploaded_timestamp_never_sets_the_submission_time(tmp_path):
    students = collect(tmp_path, download(tmp_path, {
        "Ana Silva_101_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Ana Silva_101_assignsubmission_file_/timestamp.txt": b"1999-01-01 00:00:00"}))
    assert students["101"].reasons == ["an uploaded timestamp.txt was ignored: the submission time "
                                       "comes only from the LMS"]
    folder = submitted(tmp_path, students, "101")
    assert sorted(p.name for p in folder.iterdir()) == [NOTEBOOK, "timestamp.txt.uploaded"]


def test_hand_run_zip_collect_uses_the_same_bounded_intake(tmp_path):
    """`nbgrader zip_collect` with the course's config: none of these uploads stops it."""
    course = tmp_path / "course"
    (course / "release" / ASSIGNMENT).mkdir(parents=True)
    (course / "release" / ASSIGNMENT / NOTEBOOK).write_bytes(RELEASE_BYTES)
    (course / "nbgrader_config.py").write_bytes((REPO / "nbgrader_config.py").read_bytes())
    archive = course / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    (archive / "download.zip").write_bytes(zipped({
        "Ana Silva_101_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Ana Silva_101_assignsubmission_file_/residual_cnn.zip": zipped({NOTEBOOK: RELEASE_BYTES}),
        "Ana Silva_101_assignsubmission_file_/sub/residual_cnn.ipynb": RELEASE_BYTES,
        "Ana Silva_101_assignsubmission_file_/timestamp.txt": b"1999-01-01 00:00:00",
        "Ana Silva_102_assignsubmission_file_/residual_cnn.ipynb": RELEASE_BYTES,
        "Élodie Dupont_201_assignsubmission_file_\\residual_cnn.ipynb": RELEASE_BYTES,
        "bomb_assignsubmission_file_/residual_cnn.zip": zipped({"inner.zip": zeros_zip("x.ipynb", 64 * 2**20)}),
        "broken_assignsubmission_file_/residual_cnn.zip": b"PK\x03\x04 corrupt",
    }))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", ASSIGNMENT, "--force"],
                            cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = {p.relative_to(course / "submitted").as_posix() for p in (course / "submitted").rglob("*") if p.is_file()}
    assert found == {f"101/{ASSIGNMENT}/residual_cnn.ipynb", f"101/{ASSIGNMENT}/residual_cnn.zip",
                     f"101/{ASSIGNMENT}/sub/residual_cnn.ipynb", f"101/{ASSIGNMENT}/timestamp.txt.uploaded",
                     f"102/{ASSIGNMENT}/residual_cnn.ipynb", f"201/{ASSIGNMENT}/residual_cnn.ipynb",
                     f"bomb/{ASSIGNMENT}/residual_cnn.zip", f"broken/{ASSIGNMENT}/residual_cnn.zip"}
    assert nbformat.reads(RELEASE_BYTES.decode(), as_version=4)  # the release notebook parses


def test_long_names_and_a_file_shadowing_a_folder_are_stored_or_flagged(tmp_path):
    long_name = "Øyvind" * 60                      # 360 characters, 420 bytes in UTF-8
    students = collect(tmp_path, download(tmp_path, {
        f"{long_name}/{'é' * 200}.ipynb": RELEASE_BYTES,
        "ana/notes": b"a file", "ana/notes/more.txt": b"a file in a folder of the same name",
        "ana/residual_cnn.ipynb": RELEASE_BYTES}))
    key = next(k for k in students if k.startswith("Øyvind"))
    assert key == long_name[:len(key)] and 110 <= len(key.encode()) <= 120
    long_ascii = "patched-relu-to-identity-after-definition-and-more"   # ids of the class test, kept whole
    assert student_key(long_ascii) == long_ascii and len(student_key("x" * 300)) == 120
    write_collected(students[key], tmp_path / "submitted" / key / ASSIGNMENT)
    assert len(list((tmp_path / "submitted" / key / ASSIGNMENT).iterdir())) == 1
    write_collected(students["ana"], tmp_path / "submitted" / "ana" / ASSIGNMENT)
    assert students["ana"].reasons == ["notes/more.txt could not be stored (FileExistsError); it is in the download"]
    assert (tmp_path / "submitted" / "ana" / ASSIGNMENT / NOTEBOOK).read_bytes() == RELEASE_BYTES


def test_each_malformed_notebook_is_rebuilt_as_its_honest_twin_or_not_graded(tmp_path):
    """Every malformed submission of hostile.notebook_cases, through the intake's check: a
    gradable one becomes exactly the notebook its answers make (so it is graded as the honest
    BASE, whose score the class run proves), an ungradable one exactly the untouched release
    (graded 0, as the class run proves); each says why it needs review. The class run grades
    two of them end to end (tests/test_grade_class.py)."""
    import hostile_submissions as hostile
    from nbgrader_harness import fill_answers

    release = nbformat.read(RELEASE, as_version=4)

    def rebuilt(name: str, files: dict[str, bytes]):
        folder = tmp_path / name
        folder.mkdir()
        for file_name, data in files.items():
            (folder / file_name).write_bytes(data)
        return check_submission(folder, name, RELEASE)

    twin = intake.notebook_bytes(rebuilt("base", {NOTEBOOK: nbformat.writes(fill_answers(release, hostile.BASE)).encode()}).notebook)
    untouched = intake.notebook_bytes(rebuilt("untouched", {NOTEBOOK: RELEASE_BYTES}).notebook)
    for name, (files, score, gradable) in hostile.notebook_cases(release, fill_answers).items():
        result = rebuilt(name, files)
        assert result.gradable == gradable and result.reasons, (name, result.reasons)
        assert intake.notebook_bytes(result.notebook) == (twin if gradable else untouched), name
        assert score == (hostile.BASE_SCORE if gradable else 0), name


def test_the_rebuilt_notebook_keeps_each_code_cell_s_outputs_sanitized(tmp_path):
    """What graders see when notebooks are not re-run (SandboxedExecute.rerun = False): each code
    cell's outputs as submitted, by grade_id, the first of a duplicated cell's, as text and images."""
    from autograder.nbgrader_plugin import NOT_SHOWN

    submitted = nbformat.read(RELEASE, as_version=4)
    code = [cell for cell in submitted.cells if cell.cell_type == "code"]
    code[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="the student's run\n"),
                       nbformat.v4.new_output("display_data", data={"text/html": "<script>x()</script>"})]
    duplicate = nbformat.from_dict(dict(code[1], id="duplicate", outputs=[nbformat.v4.new_output("stream", name="stdout", text="second\n")]))
    submitted.cells.append(duplicate)
    code[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="first\n")]
    (tmp_path / NOTEBOOK).write_text(nbformat.writes(submitted))
    rebuilt = [cell for cell in check_submission(tmp_path, "student", RELEASE).notebook.cells if cell.cell_type == "code"]
    assert [o.get("text") or o.data for o in rebuilt[0].outputs] == ["the student's run\n", {"text/plain": NOT_SHOWN}]
    assert [o.text for o in rebuilt[1].outputs] == ["first\n"]
    assert all(not cell.outputs for cell in rebuilt[2:])
