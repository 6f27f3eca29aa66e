"""tests/support/cfn_foreach.py expands Fn::ForEach as the CloudFormation Template Reference documents it: its
examples (the SNS topics of "Examples of Fn::ForEach in the Resources section", `&{}` for non-alphanumeric items),
a Ref to a CommaDelimitedList, nested loops, loops in properties, Conditions and Outputs, and the templates the
transform refuses."""

from __future__ import annotations

import pytest

from tests.support.cfn_eval import evaluate
from tests.support.cfn_foreach import TransformError, expand

TOPICS = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::LanguageExtensions",
    "Resources": {"Fn::ForEach::Topics": ["TopicName", ["Success", "Failure", "Timeout", "Unknown"], {
        "SnsTopic${TopicName}": {"Type": "AWS::SNS::Topic",
                                 "Properties": {"TopicName": {"Fn::Sub": "${TopicName}.fifo"}, "FifoTopic": True}}}]},
}


def test_the_documented_sns_example_expands_to_the_documented_template():
    assert expand(TOPICS) == {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        f"SnsTopic{name}": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{name}.fifo", "FifoTopic": True}}
        for name in ("Success", "Failure", "Timeout", "Unknown")}}


def test_a_ref_to_the_identifier_is_the_item_and_a_comma_delimited_list_is_split():
    template = {"Transform": ["AWS::LanguageExtensions"],
                "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "a"}},
                "Resources": {"Fn::ForEach::Queues": ["Name", {"Ref": "Names"}, {
                    "Queue${Name}": {"Type": "AWS::SQS::Queue",
                                     "Properties": {"QueueName": {"Fn::Join": ["-", [{"Ref": "Name"}, "q"]]}}}}]}}
    assert expand(template, {"Names": "x,y"})["Resources"] == {
        "Queuex": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Join": ["-", ["x", "q"]]}}},
        "Queuey": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Join": ["-", ["y", "q"]]}}}}
    assert list(expand(template, {"Names": ["x", "y"]})["Resources"]) == ["Queuex", "Queuey"]  # as a list
    assert list(expand(template)["Resources"]) == ["Queuea"]  # the default
    # an empty CommaDelimitedList is [""]: one iteration with "" (templates guard it with a Condition)
    assert list(expand(template, {"Names": ""})["Resources"]) == ["Queue"]


def test_ampersand_drops_what_is_not_alphanumeric_for_logical_ids():
    template = {"Transform": "AWS::LanguageExtensions", "Resources": {"Fn::ForEach::Subnets": ["Cidr", [
        "10.0.2.0/24", "10.0.3.0/24"], {"Subnet&{Cidr}": {"Type": "AWS::EC2::Subnet",
                                                          "Properties": {"CidrBlock": {"Ref": "Cidr"}}}}]}}
    assert expand(template)["Resources"] == {
        "Subnet1002024": {"Type": "AWS::EC2::Subnet", "Properties": {"CidrBlock": "10.0.2.0/24"}},
        "Subnet1003024": {"Type": "AWS::EC2::Subnet", "Properties": {"CidrBlock": "10.0.3.0/24"}}}


def test_values_change_only_through_ref_and_fn_sub():
    """cfn-lint's model of the transform: a plain string, a condition name in Fn::If and &{} in a value stay."""
    template = {"Transform": "AWS::LanguageExtensions", "Resources": {"Fn::ForEach::Q": ["N", ["a-b"], {"Q&{N}": {
        "Type": "AWS::SQS::Queue", "Properties": {
            "Plain": "${N}", "Amp": {"Fn::Sub": "&{N}"}, "If": {"Fn::If": ["Is${N}", {"Ref": "N"}, "x"]},
            "Left": {"Fn::Sub": "${N}-${AWS::Region}"}, "Listed": {"Fn::Sub": ["${N}-${X}", {"X": {"Ref": "N"}}]},
            "Sibling": {"Fn::GetAtt": [{"Fn::Sub": "Other${N}"}, "Arn"]}, "Literal": {"Fn::Sub": "${!N}${N}"}}}}]}}
    assert expand(template)["Resources"]["Qab"]["Properties"] == {
        "Plain": "${N}", "Amp": "&{N}", "If": {"Fn::If": ["Is${N}", "a-b", "x"]},
        "Left": {"Fn::Sub": "a-b-${AWS::Region}"}, "Listed": {"Fn::Sub": ["a-b-${X}", {"X": "a-b"}]},
        "Sibling": {"Fn::GetAtt": ["Othera-b", "Arn"]}, "Literal": "${!N}a-b"}


def test_nested_loops_properties_conditions_and_outputs():
    template = {"Transform": "AWS::LanguageExtensions",
                "Conditions": {"Fn::ForEach::Flags": ["S", ["a", "b"], {"Is${S}": {"Fn::Equals": [{"Ref": "S"}, "a"]}}]},
                "Resources": {"Fn::ForEach::Outer": ["S", ["a", "b"], {"Fn::ForEach::Inner": ["K", ["x", "y"], {
                    "R${S}${K}": {"Type": "AWS::SQS::Queue", "Condition": "Is${S}", "Properties": {
                        "Tags": {"Fn::ForEach::T": ["N", ["n1"], {"${N}": {"Fn::Sub": "${S}-${K}"}}]}}}}]}]},
                "Outputs": {"Fn::ForEach::Out": ["S", ["a"], {"Out${S}": {"Value": {"Ref": "Rax"}}}]}}
    out = expand(template)
    assert out["Conditions"] == {"Isa": {"Fn::Equals": ["a", "a"]}, "Isb": {"Fn::Equals": ["b", "a"]}}
    assert sorted(out["Resources"]) == ["Rax", "Ray", "Rbx", "Rby"]
    assert out["Resources"]["Rby"] == {"Type": "AWS::SQS::Queue", "Condition": "Is${S}", "Properties": {
        "Tags": {"n1": "b-y"}}}
    assert out["Outputs"] == {"Outa": {"Value": {"Ref": "Rax"}}}


def test_a_template_without_loops_comes_back_unchanged_transform_and_all():
    plain = {"Transform": "AWS::LanguageExtensions", "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}
    assert expand(plain) == plain


@pytest.mark.parametrize("template, message", [
    ({"Resources": TOPICS["Resources"]}, "needs `Transform: AWS::LanguageExtensions`"),
    ({**TOPICS, "Resources": {"Fn::ForEach::T": ["N", ["a"], {"Topic": {"Type": "AWS::SNS::Topic"}}]}},
     "contains neither"),
    ({**TOPICS, "Resources": {"Fn::ForEach::T": ["N", ["a", "a"], {"T${N}": {"Type": "AWS::SNS::Topic"}}]}},
     "the same key twice"),
    ({**TOPICS, "Resources": {"Ta": {"Type": "AWS::SNS::Topic"},
                              "Fn::ForEach::T": ["N", ["a"], {"T${N}": {"Type": "AWS::SNS::Topic"}}]}},
     "already there"),
    ({**TOPICS, "Resources": {"Fn::ForEach::T": ["N", {"Ref": "Nope"}, {"T${N}": {"Type": "AWS::SNS::Topic"}}]}},
     "a Ref to a CommaDelimitedList"),
    ({**TOPICS, "Resources": {"Fn::ForEach::T": ["N", ["a"]]}}, "expected [Identifier, Collection"),
])
def test_what_the_transform_refuses(template, message):
    with pytest.raises(TransformError, match=message.replace("[", r"\[")):
        expand(template)


def test_cfn_eval_expands_before_it_evaluates():
    stack = evaluate({"Transform": "AWS::LanguageExtensions",
                      "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": ""}},
                      "Conditions": {"Fn::ForEach::C": ["N", {"Ref": "Names"}, {
                          "Named${N}": {"Fn::Not": [{"Fn::Equals": [{"Ref": "N"}, ""]}]}}]},
                      "Resources": {"Fn::ForEach::Q": ["N", {"Ref": "Names"}, {"Queue${N}": {
                          "Type": "AWS::SQS::Queue", "Condition": {"Fn::Sub": "Named${N}"},
                          "Properties": {"QueueName": {"Fn::Sub": "q-${N}"}}}}]}}, {"Names": "a,b"})
    assert {name: r.arn for name, r in stack.resources.items()} == {
        "Queuea": "arn:aws:sqs:us-east-1:123456789012:q-a", "Queueb": "arn:aws:sqs:us-east-1:123456789012:q-b"}
    empty = evaluate({"Transform": "AWS::LanguageExtensions",
                      "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": ""}},
                      "Conditions": {"Fn::ForEach::C": ["N", {"Ref": "Names"}, {
                          "Named${N}": {"Fn::Not": [{"Fn::Equals": [{"Ref": "N"}, ""]}]}}]},
                      "Resources": {"Fn::ForEach::Q": ["N", {"Ref": "Names"}, {"Queue${N}": {
                          "Type": "AWS::SQS::Queue", "Condition": {"Fn::Sub": "Named${N}"}, "Properties": {}}}]}}, {})
    assert empty.resources == {} and empty.conditions == {"Named": False}
