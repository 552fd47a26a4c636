// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

import {IProofChallenges} from "./interfaces/IProofChallenges.sol";
import {IRentalEscrow} from "./interfaces/IRentalEscrow.sol";
import {ILicenseNFT} from "./interfaces/ILicenseNFT.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";

/// @notice The Halo2 verifier ezkl generates for one circuit.
interface IHalo2Verifier {
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

/// @title ProofChallenges
/// @notice Challenges of relayer receipts for provable models, judged by zero-knowledge proofs
/// (see {IProofChallenges}; the design and its limits are in docs/ZK.md).
///
/// Invariants:
/// - a dispute is resolved by this contract at most once, and only a dispute a challenge names;
/// - a receipt (by EIP-712 digest) and a dispute are each challenged at most once;
/// - an answer is accepted only if the challenge's verifier accepts the proof, instance 0 equals the
///   weights hash registered for the receipt's model version, and the other instances hash to the
///   value the relayer signed for that receipt. A proof from other weights, other inputs or outputs,
///   or another model's circuit is refused.
///
/// NOTE: the receipt and claim signatures are in the relayers' EIP-712 domain ("daimm Relayer",
/// version 1, verifyingContract = RelayerRegistry), so the domain separator is built here from the
/// RelayerRegistry's address rather than with OpenZeppelin's EIP712 (which would use this address).
contract ProofChallenges is IProofChallenges {
    // ---------------------------------------------------------------- types
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _RECEIPT_TYPEHASH = keccak256(
        "Receipt(uint256 modelId,string weightsCid,bytes32 inputsHash,bytes32 outputsHash,uint256 timestamp)"
    );
    bytes32 private constant _CLAIM_TYPEHASH = keccak256("ProofClaim(bytes32 receipt,bytes32 instancesHash)");

    // ---------------------------------------------------------------- storage
    IRentalEscrow public immutable escrow;
    IModelRegistry public immutable models;
    IRelayerRegistry public immutable relayers;
    ILicenseNFT public immutable licences;
    /// @inheritdoc IProofChallenges
    uint64 public immutable answerWindow;
    bytes32 private immutable _domainSeparator;
    uint256 private immutable _chainId;

    /// modelId => keccak256(weightsCid) => circuit
    mapping(uint256 => mapping(bytes32 => Circuit)) private _circuits;
    mapping(uint256 => Challenge) private _challenges;
    /// receipt digest => challenged
    mapping(bytes32 => bool) private _challengedReceipts;
    /// dispute id => challenged
    mapping(uint256 => bool) private _challengedDisputes;
    mapping(address => uint256) private _strikes;
    uint256 private _challengeCount;

    // ---------------------------------------------------------------- constructor
    /// @param escrow_ The RentalEscrow whose disputes this contract resolves (it needs ARBITER_ROLE).
    /// @param licences_ The escrow's LicenseNFT.
    /// @param relayers_ The RelayerRegistry (the relayers' EIP-712 verifying contract).
    /// @param answerWindow_ Seconds an answer is accepted after a challenge opens.
    constructor(address escrow_, address licences_, address relayers_, uint64 answerWindow_) {
        escrow = IRentalEscrow(escrow_);
        relayers = IRelayerRegistry(relayers_);
        models = IModelRegistry(IRelayerRegistry(relayers_).modelRegistry());
        licences = ILicenseNFT(licences_);
        answerWindow = answerWindow_;
        _chainId = block.chainid;
        _domainSeparator = keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("daimm Relayer"), keccak256("1"), block.chainid, relayers_)
        );
    }

    // ---------------------------------------------------------------- external
    /// @inheritdoc IProofChallenges
    function setCircuit(uint256 modelId, uint256 version, address verifier, uint256 weightsHash) external {
        if (IERC721(address(models)).ownerOf(modelId) != msg.sender) revert NotModelOwner(modelId, msg.sender);
        if (verifier == address(0)) revert ZeroVerifier();
        bytes32 cidHash = keccak256(bytes(models.versionOf(modelId, version).weightsCid));
        _circuits[modelId][cidHash] = Circuit(verifier, weightsHash);
        emit CircuitSet(modelId, version, cidHash, verifier, weightsHash);
    }

    /// @inheritdoc IProofChallenges
    function challenge(
        uint256 disputeId,
        Receipt calldata receipt,
        address relayer,
        bytes32 instancesHash,
        bytes calldata claimSignature
    ) external returns (uint256 challengeId) {
        _checkDispute(disputeId, receipt.modelId);
        Circuit memory circuit = _circuitOfReceipt(receipt);
        bytes32 digest = _checkClaim(receipt, relayer, instancesHash, claimSignature);
        if (_challengedReceipts[digest]) revert AlreadyChallenged(digest);
        if (_challengedDisputes[disputeId]) revert DisputeAlreadyChallenged(disputeId);
        _challengedReceipts[digest] = true;
        _challengedDisputes[disputeId] = true;
        challengeId = ++_challengeCount;
        uint64 deadline = uint64(block.timestamp) + answerWindow;
        _challenges[challengeId] = Challenge(
            disputeId, msg.sender, relayer, circuit.verifier, circuit.weightsHash, instancesHash, deadline, Status.Open
        );
        emit Challenged(challengeId, disputeId, relayer, msg.sender, digest, instancesHash, deadline);
    }

    /// @inheritdoc IProofChallenges
    function answer(uint256 challengeId, bytes calldata proof, uint256[] calldata instances) external {
        Challenge storage c = _challenges[challengeId];
        if (c.status != Status.Open) revert NotOpen(challengeId);
        if (block.timestamp > c.deadline) revert AnswerWindowClosed(challengeId, c.deadline);
        uint256 given = instances.length == 0 ? 0 : instances[0];
        if (instances.length == 0 || given != c.weightsHash) revert WrongWeightsHash(c.weightsHash, given);
        bytes32 hashed = keccak256(abi.encodePacked(instances[1:]));
        if (hashed != c.instancesHash) revert WrongInstances(c.instancesHash, hashed);
        // NOTE: the status is written before the verifier (a contract the model owner chose) is
        // called, so a re-entering verifier finds the challenge closed; a refusal reverts it all.
        c.status = Status.Answered;
        // A verifier that reverts on a malformed proof counts as a refusal.
        bool valid = false;
        try IHalo2Verifier(c.verifier).verifyProof(proof, instances) returns (bool ok) {
            valid = ok;
        } catch {
            valid = false;
        }
        if (!valid) revert InvalidProof(challengeId);
        emit Answered(challengeId, msg.sender);
        escrow.resolveDispute(c.disputeId, IRentalEscrow.Resolution.Release, 0);
    }

    /// @inheritdoc IProofChallenges
    function resolve(uint256 challengeId) external {
        Challenge storage c = _challenges[challengeId];
        if (c.status != Status.Open) revert NotOpen(challengeId);
        if (block.timestamp <= c.deadline) revert AnswerWindowOpen(challengeId, c.deadline);
        c.status = Status.Upheld;
        uint256 strikes = ++_strikes[c.relayer];
        emit Upheld(challengeId, c.relayer, strikes);
        escrow.resolveDispute(c.disputeId, IRentalEscrow.Resolution.Refund, 0);
    }

    // ---------------------------------------------------------------- view
    /// @inheritdoc IProofChallenges
    function circuitOf(uint256 modelId, string calldata weightsCid) external view returns (Circuit memory) {
        return _circuits[modelId][keccak256(bytes(weightsCid))];
    }

    /// @inheritdoc IProofChallenges
    function challengeOf(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IProofChallenges
    function strikesOf(address relayer) external view returns (uint256) {
        return _strikes[relayer];
    }

    /// @inheritdoc IProofChallenges
    function receiptDigest(Receipt calldata receipt) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                _RECEIPT_TYPEHASH,
                receipt.modelId,
                keccak256(bytes(receipt.weightsCid)),
                receipt.inputsHash,
                receipt.outputsHash,
                receipt.timestamp
            )
        );
        return MessageHashUtils.toTypedDataHash(_domainSeparator, structHash);
    }

    /// @inheritdoc IProofChallenges
    function claimDigest(bytes32 receiptDigest_, bytes32 instancesHash) public view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(
            _domainSeparator, keccak256(abi.encode(_CLAIM_TYPEHASH, receiptDigest_, instancesHash))
        );
    }

    // ---------------------------------------------------------------- private
    /// The caller opened dispute `disputeId`, still open, over a licence of model `modelId`.
    function _checkDispute(uint256 disputeId, uint256 modelId) private view {
        IRentalEscrow.Dispute memory dispute = escrow.disputeOf(disputeId);
        if (!dispute.open) revert DisputeNotOpen(disputeId);
        if (dispute.payer != msg.sender) revert NotDisputePayer(disputeId, msg.sender);
        if (licences.licenceOf(dispute.licenceId).modelId != modelId) revert WrongModel(disputeId, modelId);
    }

    /// The circuit of the receipt's model version; the receipt is within the dispute window of now.
    function _circuitOfReceipt(Receipt calldata receipt) private view returns (Circuit memory circuit) {
        uint256 windowEnd = receipt.timestamp + escrow.disputeWindow();
        if (block.timestamp > windowEnd) revert ReceiptTooOld(receipt.timestamp, windowEnd);
        if (receipt.timestamp > block.timestamp) revert ReceiptInFuture(receipt.timestamp);
        bytes32 cidHash = keccak256(bytes(receipt.weightsCid));
        circuit = _circuits[receipt.modelId][cidHash];
        if (circuit.verifier == address(0)) revert NoCircuit(receipt.modelId, cidHash);
    }

    /// The receipt's digest, once `relayer` (authorised for the model) is shown to have signed the claim.
    function _checkClaim(Receipt calldata receipt, address relayer, bytes32 instancesHash, bytes calldata signature)
        private
        view
        returns (bytes32 digest)
    {
        if (!relayers.isAuthorised(receipt.modelId, relayer)) revert RelayerNotAuthorised(receipt.modelId, relayer);
        digest = receiptDigest(receipt);
        // As CreditEscrow: ECDSA refusing high-s and malformed signatures, or ERC-1271 for a contract.
        if (!SignatureChecker.isValidSignatureNow(relayer, claimDigest(digest, instancesHash), signature)) {
            revert BadClaimSignature(relayer);
        }
    }
}
