"""Writes the SAM-transformed form of a template (what CloudFormation deploys), so that
cfn-lint can check references the plain template hides inside AWS::Serverless resources.
Needs a region (AWS_DEFAULT_REGION) for the pseudo parameters; calls no AWS API.

Usage: python transform.py template.yaml out.json
"""

import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policies; looking them up would need AWS."""

    def load(self):
        return {}


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    with open(source) as f:
        template = yaml_parse(f.read())
    # What `sam package` does: local code becomes an S3 object.
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://flavor-ci-artifacts/{name}.zip"
    try:
        transformed = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        sys.exit("\n".join(str(c) for c in e.causes))
    with open(out, "w") as f:
        json.dump(transformed, f, indent=1)


if __name__ == "__main__":
    main()
