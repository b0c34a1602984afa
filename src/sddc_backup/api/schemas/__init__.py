"""The VCF models, in camelCase on the wire. Names match the appliance's schema names."""
