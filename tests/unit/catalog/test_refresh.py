"""Refreshing the catalogue from EC2 (``Ec2InstanceTypes``): Stubber and moto."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from wbspawner.adapters.instance_types import Ec2InstanceTypes
from wbspawner.catalog.instances import CatalogError, load_catalog
from wbspawner.catalog.refresh import instance_type_from_aws, refresh_catalog
from wbspawner.errors import PermanentAwsError, TemporaryAwsError

BASE = load_catalog()


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def info(
    name: str,
    vcpu: int,
    mib: int,
    enis: int,
    ips: int,
    gpus: tuple[int, str, int] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "InstanceType": name,
        "VCpuInfo": {"DefaultVCpus": vcpu},
        "MemoryInfo": {"SizeInMiB": mib},
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
        "NetworkInfo": {
            "MaximumNetworkInterfaces": enis,
            "Ipv4AddressesPerInterface": ips,
        },
    }
    if gpus:
        count, kind, gmib = gpus
        out["GpuInfo"] = {
            "Gpus": [
                {
                    "Name": kind,
                    "Manufacturer": "NVIDIA",
                    "Count": count,
                    "MemoryInfo": {"SizeInMiB": gmib},
                }
            ]
        }
    return out


R5_LARGE = info("r5.large", 2, 16384, 3, 10)
G5_12X = info("g5.12xlarge", 48, 196608, 15, 50, (4, "A10G", 22888))


def test_refresh_updates_facts_and_keeps_prices(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    changed = dict(R5_LARGE, VCpuInfo={"DefaultVCpus": 4})
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [changed, G5_12X]},
        expected_params={"InstanceTypes": ["r5.large", "g5.12xlarge"]},
    )
    new = refresh_catalog(
        Ec2InstanceTypes(client), BASE, ["r5.large", "g5.12xlarge"], "2030-01-02"
    )
    assert new.date == "2030-01-02"
    assert new.region == "us-east-1"
    assert new.types["r5.large"].vcpu == 4
    assert new.types["r5.large"].price_per_hour == BASE.types["r5.large"].price_per_hour
    assert new.types["g5.12xlarge"] == BASE.types["g5.12xlarge"]
    assert list(new.types) == list(BASE.types)  # order kept, nothing lost
    assert "refreshed from EC2 DescribeInstanceTypes (us-east-1) on 2030-01-02" in (
        new.source
    )
    assert new.source.endswith(BASE.source)


def test_refresh_keeps_measurement_only_while_memory_is_unchanged(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    r5_2x = info("r5.2xlarge", 8, 65536, 4, 15)
    r5_4x_more = info("r5.4xlarge", 16, 131072 + 1024, 8, 30)
    stub.add_response("describe_instance_types", {"InstanceTypes": [r5_2x, r5_4x_more]})
    new = refresh_catalog(
        Ec2InstanceTypes(client), BASE, ["r5.2xlarge", "r5.4xlarge"], "2030-01-02"
    )
    assert new.types["r5.2xlarge"].measured_capacity_mib == 63498
    assert new.types["r5.4xlarge"].measured_capacity_mib is None


def test_refresh_adds_new_types_with_given_prices(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    g6e = info("g6e.xlarge", 4, 32768, 4, 15, (1, "L40S", 45776))
    stub.add_response("describe_instance_types", {"InstanceTypes": [g6e, R5_LARGE]})
    new = refresh_catalog(
        Ec2InstanceTypes(client),
        BASE,
        ["g6e.xlarge", "r5.large"],
        "2030-01-02",
        prices={"g6e.xlarge": 1.861, "r5.large": 0.13},
    )
    assert list(new.types)[-1] == "g6e.xlarge"
    assert new.types["g6e.xlarge"].gpu_kind == "L40S"
    assert new.types["g6e.xlarge"].price_per_hour == 1.861
    assert new.types["r5.large"].price_per_hour == 0.13
    assert "partly given by the admin" in new.source


@pytest.mark.parametrize(
    ("names", "today", "prices", "message"),
    [
        pytest.param(["r5.large"], "tomorrow", None, "not an ISO date", id="date"),
        pytest.param([], "2030-01-02", None, "no instance types", id="none"),
        pytest.param(["r5.large"], "2030-01-02", {"r5.large": 0.0}, "positive", id="0"),
    ],
)
def test_refresh_checks_arguments_before_calling_aws(
    stubbed: tuple[Any, Stubber],
    names: list[str],
    today: str,
    prices: dict[str, float] | None,
    message: str,
) -> None:
    client, _ = stubbed  # no response queued: any AWS call would fail the test
    with pytest.raises(CatalogError, match=message):
        refresh_catalog(Ec2InstanceTypes(client), BASE, names, today, prices)


def test_refresh_needs_a_price_for_new_types(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    g6e = info("g6e.xlarge", 4, 32768, 4, 15, (1, "L40S", 45776))
    stub.add_response("describe_instance_types", {"InstanceTypes": [g6e]})
    with pytest.raises(CatalogError, match="no on-demand price") as err:
        refresh_catalog(Ec2InstanceTypes(client), BASE, ["g6e.xlarge"], "2030-01-02")
    assert [p.path for p in err.value.problems] == [
        '$.types["g6e.xlarge"].price_per_hour'
    ]


def test_unknown_types_are_all_listed(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "describe_instance_types",
        service_error_code="InvalidInstanceType",
        service_message="The following supplied instance types do not exist: "
        "[p3.2xlarge, x9.huge]",
        expected_params={"InstanceTypes": ["r5.large", "p3.2xlarge", "x9.huge"]},
    )
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [R5_LARGE]},
        expected_params={"InstanceTypes": ["r5.large"]},
    )
    with pytest.raises(
        PermanentAwsError, match=r"in us-east-1: p3\.2xlarge, x9\.huge$"
    ) as err:
        Ec2InstanceTypes(client).describe(["r5.large", "p3.2xlarge", "x9.huge"])
    assert err.value.code == "InvalidInstanceType"


def test_unknown_types_are_probed_when_the_message_lists_none(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    both = ["r5.large", "x9.huge"]
    stub.add_client_error(
        "describe_instance_types",
        service_error_code="InvalidInstanceType",
        service_message="bad type",
        expected_params={"InstanceTypes": both},
    )
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [R5_LARGE]},
        expected_params={"InstanceTypes": ["r5.large"]},
    )
    stub.add_client_error(
        "describe_instance_types",
        service_error_code="InvalidInstanceType",
        service_message="bad type",
        expected_params={"InstanceTypes": ["x9.huge"]},
    )
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [R5_LARGE]},
        expected_params={"InstanceTypes": ["r5.large"]},
    )
    with pytest.raises(PermanentAwsError, match=r"types in us-east-1: x9\.huge$"):
        Ec2InstanceTypes(client).describe(both)


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        pytest.param(
            "RequestLimitExceeded",
            TemporaryAwsError,
            r"AWS is throttling ec2:DescribeInstanceTypes \(RequestLimitExceeded\)",
            id="throttled",
        ),
        pytest.param(
            "UnauthorizedOperation",
            PermanentAwsError,
            r"AWS denied ec2:DescribeInstanceTypes \(UnauthorizedOperation\)",
            id="denied",
        ),
    ],
)
def test_aws_errors_are_mapped(
    stubbed: tuple[Any, Stubber], code: str, error: type[Exception], message: str
) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "describe_instance_types", service_error_code=code, service_message="no"
    )
    with pytest.raises(error, match=message):
        refresh_catalog(Ec2InstanceTypes(client), BASE, ["r5.large"], "2030-01-02")


def test_describe_follows_pages(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    names = ["r5.large", "g5.12xlarge"]
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [R5_LARGE], "NextToken": "t1"},
        expected_params={"InstanceTypes": names},
    )
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [G5_12X]},
        expected_params={"InstanceTypes": names, "NextToken": "t1"},
    )
    assert set(Ec2InstanceTypes(client).describe(names)) == set(names)


def test_describe_batches_100_names(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    names = [f"x{i}.large" for i in range(101)]
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [info(n, 2, 8192, 3, 10) for n in names[:100]]},
        expected_params={"InstanceTypes": names[:100]},
    )
    stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [info(names[100], 2, 8192, 3, 10)]},
        expected_params={"InstanceTypes": names[100:]},
    )
    assert len(Ec2InstanceTypes(client).describe(names)) == 101


def test_default_network_card_sets_enis() -> None:
    p4d = info("p4d.24xlarge", 96, 1179648, 60, 50, (8, "A100", 40960))
    p4d["NetworkInfo"]["DefaultNetworkCardIndex"] = 0
    p4d["NetworkInfo"]["NetworkCards"] = [
        {"NetworkCardIndex": i, "MaximumNetworkInterfaces": 15} for i in range(4)
    ]
    it = instance_type_from_aws(p4d, 21.957642)
    assert (it.enis, it.gpu_count, it.gpu_kind) == (15, 8, "A100")


MOTO_TYPES = ["t3.medium", "m5.xlarge", "r5.16xlarge", "g4dn.xlarge", "g5.12xlarge"]


def test_refresh_against_moto_matches_shipped_catalogue(aws_env: None) -> None:
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        new = refresh_catalog(
            Ec2InstanceTypes(client), BASE, MOTO_TYPES + ["p4d.24xlarge"], "2030-01-02"
        )
    for name in MOTO_TYPES + ["p4d.24xlarge"]:
        assert new.types[name] == BASE.types[name], name


def test_refresh_against_moto_lists_invalid_types(aws_env: None) -> None:
    # moto's type data has no p3.2xlarge; real EC2 answers the same way for a typo.
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        with pytest.raises(
            PermanentAwsError, match=r"us-east-1: nope\.large, p3\.2xlarge$"
        ):
            refresh_catalog(
                Ec2InstanceTypes(client),
                BASE,
                ["r5.large", "p3.2xlarge", "nope.large"],
                "2030-01-02",
            )


class Written:
    """An instance-type source holding entries written by the test (no AWS)."""

    region = "eu-west-1"

    def __init__(self, *entries: dict[str, Any]) -> None:
        self.entries = {e["InstanceType"]: e for e in entries}
        self.asked: list[list[str]] = []

    def describe(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.asked.append(list(names))
        return {n: self.entries[n] for n in names}


def test_refresh_is_pure_over_any_source() -> None:
    """The catalogue takes facts from whatever source the shell hands it."""
    source = Written(dict(R5_LARGE, VCpuInfo={"DefaultVCpus": 4}))
    new = refresh_catalog(source, BASE, ["r5.large"], "2030-01-02")
    assert source.asked == [["r5.large"]]
    assert new.types["r5.large"].vcpu == 4
    assert "DescribeInstanceTypes (eu-west-1) on 2030-01-02" in new.source
