"""Data Docs keep GX's findings but never the sample values of personal-data columns."""

from pipelines.insight.data_docs import without_personal_data


def result_for(column, values):
    details = {"unexpected_count": len(values), "partial_unexpected_list": values, "unexpected_list": values,
               "unexpected_index_list": [1, 2],
               "partial_unexpected_counts": [{"value": v, "count": 1} for v in values]}
    config = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}}
    return {"results": [{"expectation_config": config, "result": details}]}


def test_sample_values_of_pii_columns_are_dropped_and_counts_kept():
    cleaned = without_personal_data(result_for("case_number", ["FBA0000100001"]), {"case_number"})
    details = cleaned["results"][0]["result"]
    assert details == {"unexpected_count": 1}
    assert "FBA0000100001" not in repr(cleaned)


def test_other_columns_keep_their_samples_but_not_the_full_lists():
    cleaned = without_personal_data(result_for("channel", ["fax"]), {"case_number"})
    details = cleaned["results"][0]["result"]
    assert details["partial_unexpected_list"] == ["fax"]
    assert "unexpected_list" not in details and "unexpected_index_list" not in details


def test_the_original_result_is_left_alone():
    original = result_for("case_number", ["FBA0000100001"])
    without_personal_data(original, {"case_number"})
    assert original["results"][0]["result"]["partial_unexpected_list"] == ["FBA0000100001"]
