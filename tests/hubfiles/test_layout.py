"""The 2i2c layout as defaults (issue 21): the repository found from a folder upwards, a hub's files read off its
cluster.yaml entry, a new hub's files named by the layout, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.hubfiles.layout import find_root, hub_files

CLUSTER = """\
name: c1
hubs:
  - name: staging
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
      - staging.values.yaml
      - enc-staging.secret.values.yaml
  - name: dask
    helm_chart: daskhub
    helm_chart_values_files:
      - common.values.yaml
      - dask-hub.values.yaml     # only this hub lists it: its own, whatever its name
      - enc-common.secret.values.yaml
  - name: prod
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
      - enc-common.secret.values.yaml
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "infrastructure" / "config" / "clusters" / "c1"
    folder.mkdir(parents=True)
    (folder / "cluster.yaml").write_text(CLUSTER)
    return tmp_path / "infrastructure"


def test_the_repository_is_found_from_any_folder_below_it(root: Path, tmp_path: Path) -> None:
    deep = root / "docs" / "howto"
    deep.mkdir(parents=True)
    assert find_root(deep) == root.resolve() == find_root(root)
    assert find_root(tmp_path) is None  # outside: no config/clusters from here upwards


def test_a_listed_hub_writes_the_files_its_entry_lists(root: Path) -> None:
    files = hub_files(root, "c1", "staging")
    folder = root / "config" / "clusters" / "c1"
    assert (files.values_file, files.secret_file, files.cluster_config) == (
        folder / "staging.values.yaml", folder / "enc-staging.secret.values.yaml", folder / "cluster.yaml",
    )  # fmt: skip
    assert files.new == () and files.chart == "basehub"
    assert "listed for the hub" in files.describe()


def test_a_daskhub_hub_keeps_its_own_file_and_never_gets_a_shared_one(root: Path) -> None:
    files = hub_files(root, "c1", "dask")
    assert files.values_file.name == "dask-hub.values.yaml" and files.chart == "daskhub"
    # enc-common is listed by another hub too: writing this hub's password there would give it to prod
    assert files.secret_file.name == "enc-dask.secret.values.yaml" and files.new == ("enc-dask.secret.values.yaml",)


def test_a_hub_without_files_of_its_own_gets_the_layouts_names_to_be_listed(root: Path) -> None:
    files = hub_files(root, "c1", "prod")
    assert files.new == ("prod.values.yaml", "enc-prod.secret.values.yaml")
    assert "new, to be listed there: prod.values.yaml, enc-prod.secret.values.yaml" in files.describe()


def test_an_unknown_cluster_or_hub_is_refused_naming_what_exists(root: Path) -> None:
    with pytest.raises(UsageError) as err:
        hub_files(root, "c2", "staging")
    assert "no cluster 'c2'" in str(err.value) and "(clusters: c1)" in str(err.value)
    with pytest.raises(UsageError) as err:
        hub_files(root, "c1", "staging2")
    assert "lists no hub named 'staging2' (hubs: staging, dask, prod)" in str(err.value)
    assert "add the hub's entry to cluster.yaml first" in str(err.value)
